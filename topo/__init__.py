"""Labs around a fatflowd switch, generated from the fatflowd configuration (docs/labs.md).

- :mod:`topo.plan`: one switch of a configuration -> its hosts (VMs, fabric hosts, analyzer), pure;
- :mod:`topo.netns`: network namespaces and veth pairs, found and removed by name prefix;
- :mod:`topo.lab`: the background lab (switch + fatflowd + hosts), ``python -m topo up/down``;
- :mod:`topo.mininet_topo`: the same hosts as a Mininet network with P4Runtime switch classes;
- :mod:`topo.flows`: the switch's flow tables read over P4Runtime.
"""
