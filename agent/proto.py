"""Protocol constants: frame kinds, op codes, field keys, status codes, limits.

The one source of truth for the wire: host_tools imports this very file, and
docs/protocol.md is checked against it by tests. Change a number here and the
spec and both ends change with it.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


PROTOCOL_VERSION = const(1)

# --- Frame kinds: the first byte of every frame (before COBS) --------------
KIND_PLAIN = const(0x01)  # body is one CBOR message, no protection (insecure/open links)
KIND_HANDSHAKE = const(0x02)  # reserved for the security layer
KIND_SEALED = const(0x03)  # reserved: AEAD-protected message
KIND_SIGNED = const(0x04)  # reserved: integrity-only message

# --- Op codes (request field K_OP) ----------------------------------------
OP_HELLO = const(1)  # open a session; returns info
OP_INFO = const(2)  # versions, limits, features
OP_GET = const(3)  # value, child list, property, or ?list=Struct/StructData
OP_ADD = const(4)
OP_REPLACE = const(5)  # leaf value, or ?prop=ACL/Name/Title
OP_DELETE = const(6)
OP_EXEC = const(7)
OP_ACL = const(8)  # effective-ACL query: own ACL, effective ACL, source URI
OP_CHECK = const(9)  # may server S do command C on URI U?
OP_ATOMIC = const(10)  # all-or-nothing batch of Add/Replace/Delete
OP_SEQUENCE = const(11)  # ordered batch, each item on its own; stops at the first failure
OP_COPY = const(12)  # copy the leaf at `source` to a new node at `uri`
OP_LAST = const(12)  # ops are 1..OP_LAST


# --- Field keys: small unsigned ints as CBOR map keys ------------------------
K_ID = const(0)  # request id (uint), echoed in the response
K_OP = const(1)  # op code (request)
K_STATUS = const(2)  # OMA DM status code (response)
K_URI = const(3)  # target URI, may carry ?prop=NAME or ?list=Struct|StructData
K_VALUE = const(4)  # value (Get result, Add/Replace/Exec input, info map)
K_FORMAT = const(5)  # OMA DM format name, e.g. "int", "chr", "node"
K_TYPE = const(6)  # MIME type of a leaf
K_MSG = const(7)  # human-readable reason for a non-2xx status
K_SERVER = const(8)  # ServerID: hello principal (insecure mode), check subject
K_CMD = const(9)  # command name for OP_CHECK: "Add" "Delete" "Exec" "Get" "Replace"
K_ACL = const(10)  # a node's own ACL string
K_EFFECTIVE = const(11)  # effective ACL string
K_FROM = const(12)  # URI of the node whose ACL decided
K_ALLOWED = const(13)  # bool, OP_CHECK result
K_ITEMS = const(14)  # OP_ATOMIC: list of request maps / response maps
K_CURSOR = const(15)  # paging: where a ?list= listing continues
K_LIMIT = const(16)  # paging: most entries wanted in one response
K_NEXT = const(17)  # paging: cursor of the next page, absent on the last page
K_FOR = const(18)  # proxy mode: the ServerID a gateway acts for (docs/protocol.md 7.5)
K_SOURCE = const(19)  # OP_COPY: URI of the leaf copied

# --- security layer (docs/protocol.md section 7) ---------------------------
SUITE_CCM = const(10)  # COSE alg 10, AES-CCM-16-64-128: confidentiality + integrity
SUITE_HMAC = const(4)  # COSE alg 4, HMAC 256/64: integrity only
HS_ERR = const(0)
HS1 = const(1)
HS2 = const(2)
HS3 = const(3)
HS4 = const(4)
HS_NONCE_LEN = const(16)
HS_MAC_LEN = const(32)
HS_LABEL2 = b"dmagent hs2"
HS_LABEL3 = b"dmagent hs3"
CLIENT_SENDER_ID = b"\x00"
AGENT_SENDER_ID = b"\x01"
IV_LEN = const(13)
TAG_LEN = const(8)
SEQ_LEN = const(4)
SEQ_MAX = const(0x3FFFFFFF)  # 2^30 - 1: still a small int on a 32-bit board
REPLAY_WINDOW = const(32)  # serial links; TCP is strictly increasing
HS_PENDING_MAX = const(4)
HS_TIMEOUT_MS = const(10000)
BACKOFF_BASE_MS = const(250)
BACKOFF_MAX_MS = const(60000)

# --- OMA DM status codes ---------------------------------------------------
S_OK = const(200)
S_ACCEPTED = const(202)
S_CHUNK_ACCEPTED = const(213)
S_NOT_EXECUTED = const(215)
S_ROLLED_BACK = const(216)
S_BAD_REQUEST = const(400)
S_UNAUTHORIZED = const(401)  # credentials given and refused
S_AUTH_REQUIRED = const(407)  # no credentials at all
S_FORBIDDEN = const(403)
S_NOT_FOUND = const(404)
S_NOT_ALLOWED = const(405)
S_NOT_SUPPORTED = const(406)
S_TOO_LARGE = const(413)
S_URI_TOO_LONG = const(414)
S_BAD_FORMAT = const(415)
S_EXISTS = const(418)
S_DEVICE_FULL = const(420)
S_PERMISSION_DENIED = const(425)
S_FAILED = const(500)
S_ATOMIC_FAILED = const(507)
S_ROLLBACK_FAILED = const(516)


# --- Commands named in ACLs -----------------------------------------------
CMD_ADD = "Add"
CMD_DELETE = "Delete"
CMD_EXEC = "Exec"
CMD_GET = "Get"
CMD_REPLACE = "Replace"
COMMANDS = (CMD_ADD, CMD_DELETE, CMD_EXEC, CMD_GET, CMD_REPLACE)

# --- Formats and properties --------------------------------------------------
FORMATS = ("b64", "bin", "bool", "chr", "int", "node", "null", "xml", "date", "time", "float")
PROPERTIES = ("ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo")

# --- Limits the agent announces (defaults; a board's config may lower them) --
MAX_FRAME = const(2048)  # largest decoded frame, kind byte and CRC included
MAX_DEPTH = const(16)  # CBOR nesting depth


# --- Names for people: the host's, not loaded on a board (the device never prints them) --
import sys  # noqa: E402

if sys.implementation.name != "micropython":
    OP_NAMES = {
        OP_HELLO: "hello",
        OP_INFO: "info",
        OP_GET: "get",
        OP_ADD: "add",
        OP_REPLACE: "replace",
        OP_DELETE: "delete",
        OP_EXEC: "exec",
        OP_ACL: "acl",
        OP_CHECK: "check",
        OP_ATOMIC: "atomic",
        OP_SEQUENCE: "sequence",
        OP_COPY: "copy",
    }

    STATUS_TEXT = {
        200: "OK",
        202: "Accepted",
        213: "Chunk accepted",
        215: "Not executed",
        216: "Atomic rolled back",
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        405: "Command not allowed",
        406: "Optional feature not supported",
        407: "Authentication required",
        413: "Request entity too large",
        414: "URI too long",
        415: "Unsupported media type or format",
        418: "Already exists",
        420: "Device full",
        425: "Permission denied",
        500: "Command failed",
        507: "Atomic failed",
        516: "Atomic rollback failed",
    }
