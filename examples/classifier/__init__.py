"""An example external application of fatflowd: classify mirrored first packets (DNS, TLS, SSH)
and enrich their flows through the API (UpdateFlow: offloaded, lifetime, info). See docs/demo.md."""
