"""Where the project's own files are: the one place the host tools look for agent/, boards/
and the rest, so that nothing else computes paths from its own __file__."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # holds agent/, boards/, firmware_build/, docs/
AGENT_DIR = ROOT / "agent"
BOARDS_DIR = ROOT / "boards"
DEMO_CONFIG = BOARDS_DIR / "unix" / "demo-config.json"
