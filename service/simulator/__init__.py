"""Built-in plant simulator: pure dynamics (``dynamics``) behind an OPC UA server (``server``).

``python -m service.simulator --port 4840`` runs it alone. The server lives in
``service.simulator.server`` (``SimulatorServer``); it is not imported here so that
importing the pure dynamics does not pull in asyncua. The plant it runs is stated in a
plant profile (``profile``: a TOML file; the default is ``profile.toml`` here).
"""

from pathlib import Path

TAG_MAP_PATH = Path(__file__).with_name("tags.toml")
"""The simulator's tag map (logical tag -> node id), docs/INTEGRATION.md format."""

DEFAULT_PROFILE_PATH = Path(__file__).with_name("profile.toml")
"""The default plant profile (every key explained; equal to the dynamics' defaults)."""

HARDER_PROFILE_PATH = Path(__file__).with_name("profile_harder.toml")
"""The harder plant of the control-quality bench: dead times, calibration errors, noise."""

__all__ = ["DEFAULT_PROFILE_PATH", "HARDER_PROFILE_PATH", "TAG_MAP_PATH"]
