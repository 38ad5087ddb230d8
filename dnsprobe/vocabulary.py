"""The words every stage shares, each defined once.

- Outcome classes: every lookup has exactly one. `ok`; `not_found` (NXDOMAIN, Go's "no such host");
  `timeout` (Go's IsTimeout, "i/o timeout"); `temporary` (SERVFAIL, or EAI_AGAIN from getaddrinfo);
  `refused` (REFUSED: Go says "server misbehaving" but it is not temporary); `start_failure` (the probe
  never started); `lost` (a batch sent to the probe that never answered: the probe or its pod died);
  `other`. The probe classifies in Go (go_probe/classify.go), in this order of precedence.
"""

from __future__ import annotations

from typing import Final

OUTCOMES: Final = ("ok", "not_found", "timeout", "temporary", "refused", "start_failure", "lost", "other")
