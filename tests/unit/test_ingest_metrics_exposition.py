"""The ingress's /metrics passes Prometheus's own linter (`promtool check metrics`), with every
label this process can write shown at least once."""

from __future__ import annotations

from tests.ingress_served import get, serving, webhook
from tests.promtool import assert_promtool_passes, promtool
from tests.raw_http import close, connect, read_response, read_until_closed, request


async def test_metrics_pass_promtool_with_every_label_written() -> None:
    promtool()  # skips before serving when missing
    async with serving(max_connections=2, header_timeout_s=0.3) as port:
        reader, writer = await connect(port)  # one connection held open: the bound is near
        writer.write(webhook())
        assert (await read_response(reader)).status == 200
        writer.write(request("POST", "/webhooks/omicall/wrong", b"{}"))
        assert (await read_response(reader)).status == 401
        # The second connection leaves mid-body; the third is over the bound at once.
        _, leaving = await connect(port)
        leaving.write(webhook()[:-10])
        await leaving.drain()
        over_reader, over = await connect(port)
        assert b"too_many_connections" in await read_until_closed(over_reader, within_s=5)
        await close(over)
        await close(leaving)
        await close(writer)
        # A silent connection meets the header timeout.
        silent_reader, silent = await connect(port)
        await read_until_closed(silent_reader, within_s=5)
        await close(silent)
        exposition = (await get(port, "/metrics")).body

    for shown in (
        'status="200"',
        'status="401"',
        'status="client_closed"',
        'reason="over_limit"',
        'reason="header_timeout"',
        "callstream_ingress_open_connections ",
        "callstream_ingress_ready 1.0",  # serving's publisher is ready
        "process_resident_memory_bytes ",
    ):
        assert shown.encode() in exposition, shown
    await assert_promtool_passes(exposition)
