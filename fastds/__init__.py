"""fastds: a SIP load balancer doing the job of the OpenSIPS / Kamailio dispatcher module."""

__version__ = "0.1.0"
