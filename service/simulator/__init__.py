"""Built-in plant simulator: pure dynamics (``dynamics``) behind an OPC UA server (``server``).

``python -m service.simulator --port 4840`` runs it alone. The server lives in
``service.simulator.server`` (``SimulatorServer``); it is not imported here so that
importing the pure dynamics does not pull in asyncua.
"""

from pathlib import Path

TAG_MAP_PATH = Path(__file__).with_name("tags.toml")
"""The simulator's tag map (logical tag -> node id), CONTRACT.md format."""

__all__ = ["TAG_MAP_PATH"]
