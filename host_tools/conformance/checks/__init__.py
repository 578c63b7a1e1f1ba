"""Every check of the suite, one module a part of the spec; importing this registers them."""

from dmagent.host_tools.conformance.checks import (  # noqa: F401  (registration order = report order)
    wire, ops, formats, props, uris, order, acl, rights, listing, batch, objects, security, gaps)
