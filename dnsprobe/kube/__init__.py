"""Kubernetes as the kubelet writes a pod's DNS files: manifests in; resolv.conf, hosts and the DNS
environment out, following pkg/kubelet (dns.go, kubelet_pods.go) function by function. Pure data: no
sockets, no processes, so the scenario model and `dnsprobe pod render` use it alike.
"""
