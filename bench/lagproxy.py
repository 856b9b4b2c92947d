"""A TCP proxy that holds each chunk a client sends for DELAY seconds before passing it on, so
that every request waits about DELAY for its first byte, as from a bucket far away. Answers flow
back at once. Usage: python lagproxy.py LISTEN_PORT UPSTREAM_PORT DELAY_SECONDS"""

import asyncio
import sys

LISTEN, UPSTREAM, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


async def pipe(reader, writer, delay):
    try:
        while data := await reader.read(1 << 20):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    reader, writer = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    await asyncio.gather(
        pipe(client_reader, writer, DELAY), pipe(reader, client_writer, 0)
    )


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
