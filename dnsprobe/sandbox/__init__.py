"""Sandbox stage: one pod per mode.

The local backend runs each probe in its own unprivileged user, mount and network namespaces
(`unshare -Urmn`): /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf are bind-mounted from the pod's
files, the network namespace has only a loopback interface, and the embedded nameserver listens on
127.0.0.1:53 inside it. Nothing the probe sends can reach any other nameserver; the harness talks to the
probe over a unix socket, which crosses network namespaces because it lives in the file system.

A pod's root file system is the host's, a scratch- or Alpine-like one, or an image's own
(`image_rootfs`: the layers of a local image or tarball unpacked once, mounted under an overlay).
"""

from dnsprobe.sandbox.files import PodFiles, render_pod_files
from dnsprobe.sandbox.pod import Pod, PodStartFailure, check_namespaces

__all__ = ["Pod", "PodFiles", "PodStartFailure", "check_namespaces", "render_pod_files"]
