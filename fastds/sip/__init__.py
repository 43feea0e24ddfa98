"""Sans-IO SIP: the scanned message view, byte-splicing rewrites, locally built
messages, branch ids (transaction keys are the scanned message's). No sockets, no clock, no environment."""

from fastds._ext.marks import BranchFactory, RecordRoute
from fastds._ext.sipscan import SipMessage, SipUri, parse_uri, scan
from fastds._ext.sipwrite import build_response, forward_request, forward_response
from fastds.sip.build import build_ack, build_cancel

__all__ = [
    "BranchFactory", "RecordRoute", "SipMessage", "SipUri", "build_ack", "build_cancel",
    "build_response", "forward_request", "forward_response", "parse_uri", "scan",
]
