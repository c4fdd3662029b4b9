"""The OPC UA standard nodes read from a file made once (service.ua_cache): made by one
process while others wait, used only from a private folder, and served by a real
asyncua server to a real client."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from asyncua import Client, ua
from asyncua.server.server import Server

from service.ua_cache import SHELF_NAME, standard_nodes
from tests.ports import free_port


async def test_made_once_and_served_node_by_node(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first, second = await asyncio.gather(standard_nodes(root), standard_nodes(root))
    assert first is not None and first == second
    assert first.name == SHELF_NAME and first.is_file()
    made = sorted(p.name for p in first.parent.iterdir())
    assert not [p for p in root.iterdir() if p.name.startswith(".building-")]
    assert await standard_nodes(root) == first  # found, not made again
    assert sorted(p.name for p in first.parent.iterdir()) == made

    port = free_port()
    server = Server()
    await server.init(first)
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    await server.start()
    try:
        async with Client(f"opc.tcp://127.0.0.1:{port}/", timeout=10) as client:
            state = await client.get_node(ua.ObjectIds.Server_ServerStatus_State).read_value()
            assert state == ua.ServerState.Running
            names = {
                (await node.read_browse_name()).Name
                for node in await client.nodes.objects.get_children()
            }
            assert "Server" in names
            float_type = client.get_node(ua.ObjectIds.Float)
            assert (await float_type.read_browse_name()).Name == "Float"
    finally:
        await server.stop()


async def test_a_folder_others_may_write_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    assert await standard_nodes(root) is None
    assert list(root.iterdir()) == []
