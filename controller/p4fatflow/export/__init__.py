"""Flow records out of fatflowd to standard collectors (IPFIX, RFC 7011): :mod:`p4fatflow.export.ipfix`."""

from p4fatflow.export.ipfix import IpfixEncoder, IpfixExporter, IpfixFlow, flow_of_record

__all__ = ["IpfixEncoder", "IpfixExporter", "IpfixFlow", "flow_of_record"]
