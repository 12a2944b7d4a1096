"""The Celery broker transport: kombu's Redis transport, one client per channel.

kombu's Redis channel builds a new ``redis.Redis`` client for every command
it sends outside its event loop (each publish, each acknowledgement, each
unacked-index update under late acks). Building one costs more than sending
the command: it was 13% of a worker's CPU in the relay benchmark. A client is
only a handle on the channel's connection pool and is safe to share between
threads, so the channel keeps one per pool.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
