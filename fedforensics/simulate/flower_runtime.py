"""Run a Flower ServerApp and its ClientApps in this process: no Ray, no network.

Flower 1.41's simulation runtime (``flwr.simulation.run_simulation``: the in-memory
LinkState and Grid, virtual SuperNodes with random 64-bit node ids and a
``partition-id`` each, worker threads, error replies for ClientApps that raise)
executes ClientApps only through its Ray backend. :func:`run_in_process` runs that
same runtime with a thread backend in Ray's place: ``num_cpus // client_cpus``
ClientApps at a time, as Ray's ``client_resources`` would allow.

Importing this module turns Flower's telemetry off (``FLWR_TELEMETRY_ENABLED=0``),
whether flwr was imported before it or not.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.client_app import ClientAppException, LoadClientAppError
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.server.superlink.fleet.vce.backend import Backend, BackendConfig
from flwr.serverapp import ServerApp
from flwr.simulation import run_simulation
from flwr.supercore import telemetry

# flwr reads the variable once, on its first import, into this constant.
os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
telemetry.FLWR_TELEMETRY_ENABLED = "0"

# The module the runtime imports its backend from, when it starts.
_RAY_BACKEND_MODULE = "flwr.server.superlink.fleet.vce.backend.raybackend"


class ThreadBackend(Backend):
    """Runs each ClientApp call on the runtime's worker threads, in this process."""

    def __init__(self, backend_config: BackendConfig) -> None:
        total = float(backend_config.get("init_args", {}).get("num_cpus", os.cpu_count() or 1))
        per_client = float(backend_config.get("client_resources", {}).get("num_cpus", 1))
        self._workers = max(1, int(total // per_client))
        self._busy = 0
        self._lock = threading.Lock()
        self._app_fn: Callable[[], ClientApp] | None = None

    def build(self, app_fn: Callable[[], ClientApp]) -> None:
        self._app_fn = app_fn

    @property
    def num_workers(self) -> int:
        return self._workers

    def is_worker_idle(self) -> bool:
        return self._busy < self._workers

    def process_message(self, message: Message, context: Context) -> tuple[Message, Context]:
        """Run the ClientApp on its own copy of ``message`` and hand back a copy of its reply, as Ray does by
        serialising both (one object shared by every ClientApp of a round, and by the ServerApp, let a client that
        trained in place change what the others received); its exception becomes the runtime's error reply."""
        if self._app_fn is None:
            raise RuntimeError("build() the backend before processing messages")
        with self._lock:
            self._busy += 1
        try:
            reply = self._app_fn()(message=_copied(message), context=context)
            return _copied(reply), context
        except LoadClientAppError:
            raise
        except Exception as exc:
            raise ClientAppException(str(exc)) from exc
        finally:
            with self._lock:
                self._busy -= 1

    def terminate(self) -> None:
        """Nothing to release: the workers are the runtime's threads."""


def _copied(message: Message) -> Message:
    """``message`` through Flower's wire format and back: a copy that shares no array or record with it."""
    return message_from_proto(message_to_proto(message))


def run_in_process(
    server_app: ServerApp,
    client_app: ClientApp,
    num_supernodes: int,
    *,
    num_cpus: int = 2,
    client_cpus: int = 1,
) -> None:
    """Run ``server_app`` against ``num_supernodes`` virtual SuperNodes running ``client_app``.

    ``num_cpus // client_cpus`` ClientApps run at a time. Exceptions of the ServerApp
    propagate; those of a ClientApp become error replies to the ServerApp.
    """
    shim = types.ModuleType(_RAY_BACKEND_MODULE)
    shim.RayBackend = ThreadBackend  # type: ignore[attr-defined]
    previous = sys.modules.get(_RAY_BACKEND_MODULE)
    sys.modules[_RAY_BACKEND_MODULE] = shim
    try:
        run_simulation(
            server_app,
            client_app,
            num_supernodes,
            backend_name="in-process",  # any name but "ray", which would demand the ray package
            backend_config={
                "init_args": {"num_cpus": num_cpus},
                "client_resources": {"num_cpus": client_cpus, "num_gpus": 0.0},
            },
        )
    finally:
        if previous is None:
            sys.modules.pop(_RAY_BACKEND_MODULE, None)
        else:
            sys.modules[_RAY_BACKEND_MODULE] = previous
