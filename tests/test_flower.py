"""recorder.flower against real Flower runs (flwr's simulation runtime, in process, no Ray)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedforensics import open_run

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"  # before flwr is imported
torch = pytest.importorskip("torch")
pytest.importorskip("flwr")
torch.set_num_threads(1)

from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.common import NDArrays, Scalar, ndarrays_to_parameters  # noqa: E402
from flwr.client import NumPyClient  # noqa: E402
from flwr.server import ServerAppComponents, ServerConfig  # noqa: E402
from flwr.server.strategy import FedAvg as LegacyFedAvg  # noqa: E402
from flwr.serverapp import ServerApp  # noqa: E402
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from fedforensics.simulate.flower_runtime import run_in_process  # noqa: E402
from recorder import Recorder, RecorderError  # noqa: E402
from recorder.flower import NODE_NAME_TABLE, NODE_TABLE, RecordingStrategy  # noqa: E402

NODES = 4
ROUNDS = 3
_X, _Y = load_digits(return_X_y=True)
_X = (_X / 16.0).astype(np.float32)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


def _initial_arrays() -> ArrayRecord:
    return ArrayRecord(_model().state_dict())


def _partition(pid: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.arange(pid, 1200, NODES)  # the rest is the server's test set
    return torch.from_numpy(_X[rows]), torch.from_numpy(_Y[rows])


def _train(state: dict[str, torch.Tensor], pid: int, server_round: int) -> tuple[dict[str, torch.Tensor], float]:
    """One local epoch of SGD, deterministic per (partition, round) whatever the thread."""
    model = _model()
    model.load_state_dict(state)
    x, y = _partition(pid)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1000 * server_round + pid))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.zeros(())
    for batch in order.split(32):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        optimiser.step()
    return model.state_dict(), loss.item()


def _accuracy(arrays: ArrayRecord) -> float:
    model = _model()
    model.load_state_dict(arrays.to_torch_state_dict())
    with torch.no_grad():
        return float((model(torch.from_numpy(_X[1200:])).argmax(1).numpy() == _Y[1200:]).mean())


class Clients:
    """A ClientApp that trains for real and keeps what every client received and sent."""

    def __init__(self, raise_at: dict[int, int] | None = None, sleep_at: dict[int, int] | None = None) -> None:
        self.raise_at = raise_at or {}  # round -> partition whose ClientApp raises
        self.sleep_at = sleep_at or {}  # round -> partition that replies too late
        self.seen: dict[tuple[int, int], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
        self.node_ids: dict[int, int] = {}
        self.app = ClientApp()
        self.app.train()(self._train)

    def _train(self, message: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        server_round = int(message.content["config"]["server-round"])
        self.node_ids[pid] = context.node_id
        if self.raise_at.get(server_round) == pid:
            raise RuntimeError(f"boom in partition {pid}")
        if self.sleep_at.get(server_round) == pid:
            time.sleep(4.0)
        received = message.content["arrays"].to_torch_state_dict()
        local, loss = _train(received, pid, server_round)
        self.seen[(server_round, pid)] = (
            {k: v.numpy().copy() for k, v in received.items()},
            {k: v.numpy().copy() for k, v in local.items()},
        )
        metrics = MetricRecord({"num-examples": len(_partition(pid)[1]), "partition-id": pid, "train_loss": loss})
        return Message(RecordDict({"arrays": ArrayRecord(local), "metrics": metrics}), reply_to=message)


def _server(make_strategy: Callable[[], object], out: dict, **start: object) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        out["result"] = make_strategy().start(grid=grid, initial_arrays=_initial_arrays(), **start)

    return app


def _record_three_nodes(path: Path, app: ClientApp, num_rounds: int, initial: ArrayRecord | None = None) -> None:
    """Record into ``path`` a FedAvg federation of three nodes running ``app``, each of them in every round."""
    with Recorder(path) as rec:
        server = ServerApp()

        @server.main()
        def main(grid, context) -> None:
            RecordingStrategy(FedAvg(fraction_evaluate=0.0, min_train_nodes=3, min_available_nodes=3), rec).start(
                grid=grid, initial_arrays=_initial_arrays() if initial is None else initial, num_rounds=num_rounds
            )

        run_in_process(server, app, 3, num_cpus=1)


def _evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    return MetricRecord({"accuracy": _accuracy(arrays)})


def _fedavg() -> FedAvg:
    return FedAvg(fraction_evaluate=0.0, min_train_nodes=NODES, min_available_nodes=NODES)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, Clients, dict]:
    """A real 4-node, 3-round run through RecordingStrategy; partition 3 raises in round 2."""
    path = tmp_path_factory.mktemp("flower") / "run.h5"
    clients, out = Clients(raise_at={2: 3}), {}
    with Recorder(path) as rec:
        server = _server(lambda: RecordingStrategy(_fedavg(), rec), out, num_rounds=ROUNDS, evaluate_fn=_evaluate)
        run_in_process(server, clients.app, NODES, num_cpus=2)
    return path, clients, out


def test_every_update_is_local_minus_global(recorded):
    path, clients, _ = recorded
    with open_run(path) as run:
        assert run.rounds == [1, 2, 3]
        for r in run.rounds:
            expected = [str(p) for p in range(NODES) if (r, p) in clients.seen]
            assert run.clients(r) == expected  # partition ids, sorted whatever the arrival order
            for cid in expected:
                received, local = clients.seen[(r, int(cid))]
                update = run.update(r, cid)
                for name, value in local.items():
                    np.testing.assert_array_equal(update[name], value.astype(np.float32) - received[name].astype(np.float32))
                    np.testing.assert_array_equal(run.global_state(r)[name], received[name])


def test_counts_metrics_and_global_metrics(recorded):
    path, _, out = recorded
    with open_run(path) as run:
        assert run.num_samples(1) == {str(p): len(_partition(p)[1]) for p in range(NODES)}
        assert run.metric_names(1) == ["train_loss"]  # the partition id is the client id, not a metric
        for r in run.rounds:
            assert run.global_metrics(r) == {"accuracy": out["result"].evaluate_metrics_serverapp[r]["accuracy"]}


def test_the_model_start_returns_is_the_final_state(recorded):
    """QA: docs/flower.md's two lines left the final state out (the audit said "final state: no", and trigger
    inversion took the model the last round started from)."""
    path, _, out = recorded
    with open_run(path) as run:
        final = run.final_state()
    assert final is not None and list(final) == list(out["result"].arrays.keys())
    for name, array in out["result"].arrays.items():
        np.testing.assert_array_equal(final[name], array.numpy())


def test_error_reply_is_a_failure_of_its_client(recorded):
    path, _, _ = recorded
    with open_run(path) as run:
        assert run.clients(2) == ["0", "1", "2"]
        failures = run.failures(2)
        assert list(failures) == ["3"]  # the id partition 3 reported in round 1
        assert "boom in partition 3" in failures["3"]
        assert not run.failures(1) and not run.failures(3)


def test_node_ids_are_kept_unsigned_64_bit(recorded):
    path, clients, _ = recorded
    with open_run(path) as run:
        table = run.attachment(NODE_TABLE)
    assert table["node_id"].dtype == np.uint64
    mapping = {int(c): int(n) for c, n in zip(table["client_id"], table["node_id"])}
    assert mapping == clients.node_ids
    assert all(0 < node < 2**64 for node in mapping.values())


def test_wrapping_does_not_change_the_federation(recorded):
    """Same seed, unwrapped: the same global model every round, up to summation order."""
    _, _, wrapped = recorded
    plain: dict = {}
    run_in_process(
        _server(_fedavg, plain, num_rounds=ROUNDS, evaluate_fn=_evaluate), Clients(raise_at={2: 3}).app, NODES
    )
    a, b = wrapped["result"], plain["result"]
    for name in a.arrays:
        np.testing.assert_allclose(a.arrays[name].numpy(), b.arrays[name].numpy(), rtol=1e-5, atol=1e-6)
    assert a.train_metrics_clientapp.keys() == b.train_metrics_clientapp.keys()
    for r in a.train_metrics_clientapp:
        assert a.train_metrics_clientapp[r]["train_loss"] == pytest.approx(b.train_metrics_clientapp[r]["train_loss"])


def test_one_shot_replies_reach_the_wrapped_strategy_unchanged(tmp_path):
    """Replies as a generator, in another order than they arrived: the aggregate is FedAvg's, bit for bit."""
    out: dict = {}
    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        with Recorder(tmp_path / "run.h5") as rec:
            strategy = RecordingStrategy(_fedavg(), rec)
            messages = strategy.configure_train(1, _initial_arrays(), ConfigRecord(), grid)
            replies = list(grid.send_and_receive(messages, timeout=60))[::-1]
            out["wrapped"] = strategy.aggregate_train(1, (reply for reply in replies))
            out["plain"] = _fedavg().aggregate_train(1, replies)

    run_in_process(app, Clients().app, NODES)
    (arrays, metrics), (plain_arrays, plain_metrics) = out["wrapped"], out["plain"]
    for name in plain_arrays:
        np.testing.assert_array_equal(arrays[name].numpy(), plain_arrays[name].numpy())
    assert dict(metrics) == dict(plain_metrics)
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(1) == [str(p) for p in range(NODES)]


def test_node_that_never_replies_is_a_failure(tmp_path):
    clients = Clients(sleep_at={1: 1})
    with Recorder(tmp_path / "run.h5") as rec:
        server = _server(lambda: RecordingStrategy(FedAvg(fraction_evaluate=0.0), rec), {}, num_rounds=1, timeout=2.0)
        run_in_process(server, clients.app, 2)
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(1) == ["0"]
        assert run.failures(1) == {str(clients.node_ids[1]): "no reply"}  # never reported an id: its node id


def test_outermost_around_server_side_dp_records_what_clients_sent(tmp_path):
    clients, out = Clients(), {}
    clip = 0.01
    with Recorder(tmp_path / "run.h5") as rec:
        dp = lambda: DifferentialPrivacyServerSideFixedClipping(_fedavg(), 0.0, clip, NODES)  # noqa: E731
        server = _server(lambda: RecordingStrategy(dp(), rec), out, num_rounds=1)
        run_in_process(server, clients.app, NODES)
    with open_run(tmp_path / "run.h5") as run:
        norms = np.linalg.norm(run.update_matrix(1), axis=1)
    assert (norms > 10 * clip).all()  # unclipped
    aggregate = out["result"].arrays
    initial = _initial_arrays()
    step = np.sqrt(sum(float(((aggregate[k].numpy() - initial[k].numpy()) ** 2).sum()) for k in initial))
    assert step <= clip * (1 + 1e-5)  # while the model took the clipped mean


class _LegacyClient(NumPyClient):
    def __init__(self, clients: Clients, pid: int) -> None:
        self.clients, self.pid = clients, pid

    def fit(self, parameters: NDArrays, config: dict[str, Scalar]) -> tuple[NDArrays, int, dict[str, Scalar]]:
        server_round = int(config["server_round"])
        if self.clients.raise_at.get(server_round) == self.pid:
            raise RuntimeError(f"boom in partition {self.pid}")
        names = list(_model().state_dict())
        received = {k: torch.from_numpy(v.copy()) for k, v in zip(names, parameters)}
        local, loss = _train(received, self.pid, server_round)
        self.clients.seen[(server_round, self.pid)] = (dict(zip(names, parameters)), {k: v.numpy() for k, v in local.items()})
        return [v.numpy() for v in local.values()], len(_partition(self.pid)[1]), {"partition-id": self.pid, "train_loss": loss}


def test_legacy_strategy_is_recorded(tmp_path):
    clients = Clients(raise_at={2: 1})
    names = list(_model().state_dict())
    initial = [v.numpy() for v in _model().state_dict().values()]
    def client_fn(context):
        return _LegacyClient(clients, int(context.node_config["partition-id"])).to_client()

    with Recorder(tmp_path / "run.h5") as rec:
        strategy = LegacyFedAvg(
            fraction_evaluate=0.0,
            min_fit_clients=3,
            min_available_clients=3,
            initial_parameters=ndarrays_to_parameters(initial),
            on_fit_config_fn=lambda r: {"server_round": r},
        )
        recording = RecordingStrategy(strategy, rec, layer_names=names)
        server = ServerApp(
            server_fn=lambda context: ServerAppComponents(strategy=recording, config=ServerConfig(num_rounds=2))
        )
        run_in_process(server, ClientApp(client_fn=client_fn), 3)
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [1, 2]
        assert run.clients(2) == ["0", "2"]
        assert "boom in partition 1" in run.failures(2)["1"]
        for r in run.rounds:
            for cid in run.clients(r):
                received, local = clients.seen[(r, int(cid))]
                for name in names:
                    np.testing.assert_array_equal(run.update(r, cid)[name], local[name] - received[name])


def test_recorder_works_without_flwr(tmp_path):
    """flwr blocked: the recorder records, and only recorder.flower says what is missing."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["flwr"] = None  # import flwr now fails
        import numpy as np
        from recorder import Recorder
        with Recorder({str(tmp_path / "run.h5")!r}) as rec:
            with rec.round(0, {{"w": np.zeros(3, np.float32)}}) as rnd:
                rnd.client("a", {{"w": np.ones(3, np.float32)}}, num_samples=1)
        try:
            import recorder.flower
        except ImportError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pip install" in done.stdout and "fedforensics[flower]" in done.stdout
    with open_run(tmp_path / "run.h5") as run:
        np.testing.assert_array_equal(run.update(0, "a")["w"], np.ones(3, np.float32))


class _SkipsRoundTwo(FedAvg):
    """A strategy that aggregates no model in round 2 (as FedAvg does when too many replies failed)."""

    def aggregate_train(self, server_round, replies):
        if server_round == 2:
            list(replies)
            return None, None
        return super().aggregate_train(server_round, replies)


def test_a_round_without_an_aggregated_model_records_no_evaluation_of_it(tmp_path):
    """Flower then evaluates the previous round's model; that was recorded as the round's own accuracy."""
    out: dict = {}
    with Recorder(tmp_path / "run.h5") as rec:
        strategy = lambda: RecordingStrategy(_SkipsRoundTwo(fraction_evaluate=0.0, min_train_nodes=NODES), rec)  # noqa: E731
        run_in_process(_server(strategy, out, num_rounds=ROUNDS, evaluate_fn=_evaluate), Clients().app, NODES)
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [1, 2, 3] and run.clients(2) == [str(p) for p in range(NODES)]
        assert run.global_metrics(2) == {}
        assert set(run.global_metrics(1)) == set(run.global_metrics(3)) == {"accuracy"}


# -- replies fed to a legacy strategy by hand: id and count edge cases no honest simulation produces --

from flwr.common import Code, FitIns, FitRes, Status  # noqa: E402
from flwr.server.client_proxy import ClientProxy  # noqa: E402
from flwr.server.strategy import Strategy as LegacyStrategy  # noqa: E402


class _Node(ClientProxy):
    """A Flower node the server addresses; these tests never call it."""

    def __init__(self, node_id: int) -> None:
        super().__init__(str(node_id))
        self.node_id = node_id

    get_properties = get_parameters = fit = evaluate = reconnect = lambda self, *a, **k: None


class _AskAll(LegacyStrategy):
    """Sends the model to every node and aggregates nothing."""

    def __init__(self, nodes: list[_Node]) -> None:
        self.nodes = nodes

    def initialize_parameters(self, client_manager):  # type: ignore[no-untyped-def]
        return None

    def configure_fit(self, server_round, parameters, client_manager):  # type: ignore[no-untyped-def]
        return [(node, FitIns(parameters, {})) for node in self.nodes]

    def aggregate_fit(self, server_round, results, failures):  # type: ignore[no-untyped-def]
        return None, {}

    def configure_evaluate(self, *args):  # type: ignore[no-untyped-def]
        return []

    def aggregate_evaluate(self, *args):  # type: ignore[no-untyped-def]
        return None, {}

    def evaluate(self, *args):  # type: ignore[no-untyped-def]
        return None


def _record_by_hand(path: Path, rounds: list[list[tuple[int, dict, int]]], sent: dict[int, np.ndarray] | None = None) -> None:
    """Each round: (node id, reply metrics, num_examples) per reply; ``sent``: a node's own layer (default: global + 1)."""
    weights = [np.zeros((2, 2), np.float32)]
    sent = sent or {}
    nodes = {node: _Node(node) for replies in rounds for node, _, _ in replies}
    with Recorder(path) as rec:
        strategy = RecordingStrategy(_AskAll(list(nodes.values())), rec)
        for r, replies in enumerate(rounds, start=1):
            strategy.configure_fit(r, ndarrays_to_parameters(weights), None)
            results = [
                (nodes[node], FitRes(Status(Code.OK, ""), ndarrays_to_parameters([sent.get(node, weights[0] + 1)]), count, metrics))
                for node, metrics, count in replies
            ]
            strategy.aggregate_fit(r, results, [])


def test_a_node_id_taken_by_another_nodes_reported_id_gets_a_name_of_its_own(tmp_path):
    """Node 3 reported client-id 5 while node 5 reported nothing: both were '5', the recorder refused
    the second, and the whole round was lost with an exception in Flower's server loop."""
    _record_by_hand(tmp_path / "run.h5", [
        [(3, {"client-id": 0}, 10), (5, {}, 10), (9, {}, 10)],
        [(3, {"client-id": 5}, 10), (5, {}, 10), (9, {}, 10)],
        [(3, {"client-id": 9}, 10), (9, {"client-id": 9}, 10)],  # a claim lost to a lower node
    ])
    with open_run(tmp_path / "run.h5") as run:
        assert {r: run.clients(r) for r in run.rounds} == {1: ["0", "5", "9"], 2: ["5", "9", "node-5"], 3: ["9", "node-9"]}


def test_an_id_reported_this_round_wins_over_one_learnt_before(tmp_path):
    """QA: client 104 moved from node 1005 to node 1009; the stale node, still asked, took '104' by its
    lower node id and the real update was filed under '1009', the client's history split in two."""
    _record_by_hand(
        tmp_path / "run.h5",
        [
            [(1005, {"client-id": 104}, 10), (1001, {"client-id": 101}, 10)],
            [(1005, {}, 10), (1009, {"client-id": 104}, 10), (1001, {"client-id": 101}, 10)],
        ],
        sent={1009: np.full((2, 2), 5, np.float32)},
    )
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(2) == ["101", "104", "1005"]
        (update,) = run.update(2, "104").values()  # node 1009's reply: global (0) + 5
        np.testing.assert_array_equal(update, 5)


def test_numbers_the_file_cannot_hold_lose_no_round(tmp_path):
    """num_examples=2**63 made the round's end raise OverflowError, a metric of 10**400 the reply's
    conversion: either way the round was lost. The count is kept as a metric; 10**400 is no metric."""
    _record_by_hand(tmp_path / "run.h5", [[(1, {"tokens": 10**400}, 2**63 - 1), (2, {"loss": 0.5}, 2**63)]])
    with open_run(tmp_path / "run.h5") as run:
        assert run.num_samples(1) == {"1": 2**63 - 1, "2": 0}
        assert run.metrics(1) == {"1": {}, "2": {"loss": 0.5, "num-examples": float(2**63)}}  # 10**400 is no float64


def test_a_reply_the_file_cannot_hold_is_a_failure_of_its_client_alone(tmp_path):
    """A NUL in a metric name, or complex values of the right shape, made the recorder refuse the reply:
    the RecorderError left aggregate_fit, the round was lost and the federation stopped."""
    _record_by_hand(
        tmp_path / "run.h5",
        [[(1, {"lo\x00ss": 1.0}, 10), (2, {"loss": 0.5}, 10), (3, {}, 10)]],
        sent={3: np.ones((2, 2), np.complex64)},
    )
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(1) == ["2"]
        failures = run.failures(1)
        assert set(failures) == {"1", "3"} and all(reason.startswith("not recorded: round 1, client ") for reason in failures.values())
        assert "NUL" in failures["1"] and "complex" in failures["3"]


def test_a_reply_with_a_metric_name_longer_than_a_name_is_a_failure_of_one_line(tmp_path):
    """A metric name of a million characters was recorded as one, and every report printed it (a review): the reply
    is now refused as one with a NUL in a name is, its failure's reason quoting the name's beginning alone."""
    _record_by_hand(tmp_path / "run.h5", [[(1, {"m" * 10**6: 1.0}, 10), (2, {"m" * 1024: 0.5}, 10)]])
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(1) == ["2"] and run.metric_names(1) == ["m" * 1024]
        (reason,) = run.failures(1).values()
    assert reason.startswith("not recorded: round 1, client '1': metric name 'mmm") and len(reason) < 200


def test_each_client_app_gets_its_own_copy_of_the_message(tmp_path):
    """QA: run_in_process handed one Message to every ClientApp of a round and to the ServerApp (Ray serialises
    them): a client training in place changed what the next received, and every reply was one shared object."""
    received: dict[int, np.ndarray] = {}
    app = ClientApp()

    @app.train()
    def train(message: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        arrays = message.content["arrays"]
        received[pid] = arrays["0.bias"].numpy().copy()
        for key in list(arrays.keys()):
            arrays[key] = Array(arrays[key].numpy() + 1.0)  # "trains" in place and replies with the same record
        return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 1, "partition-id": pid})}), reply_to=message)

    initial = _initial_arrays()
    before = initial["0.bias"].numpy().copy()
    path = tmp_path / "copies.h5"
    _record_three_nodes(path, app, 1, initial)
    np.testing.assert_array_equal(initial["0.bias"].numpy(), before)  # the ServerApp's arrays are its own
    assert all(np.array_equal(got, before) for got in received.values()) and len(received) == 3
    with open_run(path) as run:
        for pid in range(3):
            np.testing.assert_allclose(run.update(1, str(pid))["0.bias"], 1.0)


def test_the_strategy_s_weight_key_and_attribute_writes_and_unstorable_global_metric_names(tmp_path):
    """QA: with FedAvg(weighted_by_key="samples") every count was 0 and the weights a metric; a NUL in a global
    metric's name ended the federation and cost the round its other global metrics; setting an attribute on the
    wrapper left the wrapped strategy's as it was."""
    app = ClientApp()

    @app.train()
    def train(message: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        arrays = message.content["arrays"]
        local = ArrayRecord({key: Array(arrays[key].numpy() + pid) for key in arrays.keys()})
        return Message(RecordDict({"arrays": local, "metrics": MetricRecord({"samples": 100 * (pid + 1), "partition-id": pid})}), reply_to=message)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        return MetricRecord({"acc": 0.5, "acc\x00top5": 0.9})

    path = tmp_path / "weights.h5"
    with Recorder(path) as rec:
        wrapped = RecordingStrategy(FedAvg(fraction_evaluate=0.0, min_train_nodes=3, min_available_nodes=3), rec)
        wrapped.fraction_train = 1.0  # reaches the strategy that runs
        assert wrapped.strategy.fraction_train == 1.0 and "fraction_train" not in wrapped.__dict__
        # set after wrapping (review: the key read once at construction went stale, counts 0 and weights a metric)
        wrapped.weighted_by_key = "samples"
        server = ServerApp()

        @server.main()
        def main(grid, context) -> None:
            wrapped.start(grid=grid, initial_arrays=_initial_arrays(), num_rounds=2, evaluate_fn=evaluate)

        run_in_process(server, app, 3, num_cpus=1)
    with open_run(path) as run:
        assert run.rounds == [1, 2]
        assert run.num_samples(1) == {"0": 100, "1": 200, "2": 300} and run.metrics(1)["2"] == {}
        assert run.global_metrics(1) == {"acc": 0.5}


def test_a_recorder_that_cannot_take_the_round_is_refused_before_the_clients_train(tmp_path):
    """QA: a path, None or a closed recorder was accepted, and start() run twice on one recorder, failed only in
    aggregate_fit, once every client had trained the round; id_keys given as one string became its characters."""
    with pytest.raises(TypeError, match="recorder must be an open recorder.Recorder, not str"):
        RecordingStrategy(FedAvg(), str(tmp_path / "run.h5"))  # type: ignore[arg-type]
    weights = ndarrays_to_parameters([np.zeros((2, 2), np.float32)])
    with Recorder(tmp_path / "run.h5") as rec:
        assert RecordingStrategy(FedAvg(), rec, id_keys="partition-id")._log._id_keys == ("partition-id",)
        strategy = RecordingStrategy(_AskAll([_Node(1)]), rec)
        strategy.configure_fit(1, weights, None)
        strategy.aggregate_fit(1, [(_Node(1), FitRes(Status(Code.OK, ""), weights, 10, {}))], [])
        again = RecordingStrategy(_AskAll([_Node(1)]), rec)  # the same federation's rounds, started over
        with pytest.raises(RecorderError, match="round 1: round numbers must increase .* a Recorder of its own"):
            again.configure_fit(1, weights, None)  # before the messages go out
    with pytest.raises(RecorderError, match="is closed"):
        RecordingStrategy(_AskAll([_Node(1)]), rec).configure_fit(2, weights, None)


def test_wrong_arguments_are_refused_in_one_line_that_names_the_mistake(tmp_path):
    """QA: a RecordingStrategy wrapped again was refused for "overriding start()", a strategy class as "ABCMeta",
    id_keys=5 as "'int' object is not iterable"; id_keys holding a non-name was accepted and could never match."""
    with Recorder(tmp_path / "run.h5") as rec:
        with pytest.raises(TypeError, match=r"^the strategy is a RecordingStrategy already: wrap it once$"):
            RecordingStrategy(RecordingStrategy(FedAvg(), rec), rec)
        with pytest.raises(TypeError, match=r"^pass a strategy, not its class: FedAvg\(\.\.\.\)$"):
            RecordingStrategy(FedAvg, rec)  # type: ignore[arg-type]
        for keys in (5, ["client-id", 3], [""]):
            with pytest.raises(TypeError, match=r"^id_keys must be reply metric names \(strings\), not "):
                RecordingStrategy(FedAvg(), rec, id_keys=keys)  # type: ignore[arg-type]
        assert RecordingStrategy(FedAvg(), rec, id_keys=())._log._id_keys == ()  # every client under its node id
        # QA: layer names given to a Message API strategy, whose ArrayRecords name their arrays, were ignored silently
        with pytest.raises(TypeError, match=r"^layer_names is for a legacy strategy \(flwr.server.strategy\)"):
            RecordingStrategy(FedAvg(), rec, layer_names=["a"])
        assert RecordingStrategy(LegacyFedAvg(), rec, layer_names=["a"])._names(1) == ["a"]


_NAMES = ["site-a/node 1", "7f3c1e2a-9b4d-4c61-8e0f-2d5b6a7c8d90", "ünï côdé"]


def test_a_client_named_in_text_in_a_config_record_is_recorded_under_that_name(tmp_path):
    """QA: Flower's MetricRecord holds no text, so a client named "site-a/node 1" reports it in a ConfigRecord; it
    was recorded under its random node id, the name lost, and its error reply in round 2 under the node id too."""
    nodes: dict[str, int] = {}
    app = ClientApp()

    @app.train()
    def train(message: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        nodes[_NAMES[pid]] = context.node_id
        if pid == 2 and int(message.content["config"]["server-round"]) == 2:
            raise RuntimeError("boom")
        arrays = message.content["arrays"]
        local = ArrayRecord({key: Array(arrays[key].numpy() + pid) for key in arrays.keys()})
        ids = ConfigRecord({"client-id": _NAMES[pid]})
        metrics = MetricRecord({"num-examples": 10 + pid, "loss": 0.5})
        return Message(RecordDict({"arrays": local, "metrics": metrics, "ids": ids}), reply_to=message)

    path = tmp_path / "names.h5"
    _record_three_nodes(path, app, 2)
    with open_run(path) as run:
        assert run.clients(1) == sorted(_NAMES) and run.clients(2) == sorted(_NAMES[:2])
        assert run.num_samples(1) == {name: 10 + pid for pid, name in enumerate(_NAMES)}
        assert run.metrics(1)[_NAMES[0]] == {"loss": 0.5}
        assert list(run.failures(2)) == [_NAMES[2]] and "boom" in run.failures(2)[_NAMES[2]]
        table = run.attachment(NODE_NAME_TABLE)
    names = [bytes(row).rstrip(b"\0").decode("utf-8") for row in table["client_id"]]
    assert dict(zip(names, table["node_id"].tolist())) == nodes


def test_a_legacy_client_named_in_text_and_an_id_the_file_cannot_hold(tmp_path):
    """The legacy API's metrics hold text: a client-id "site-a/node 1" names its client; one with a NUL, which the
    file cannot hold, does not (its node id does), and costs no round; numbered ids keep the numeric node table."""
    _record_by_hand(tmp_path / "run.h5", [[(3, {"client-id": _NAMES[0]}, 10), (5, {"client-id": "a\x00b"}, 10), (9, {"client-id": 4}, 10)]])
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(1) == ["4", "5", _NAMES[0]]
        assert run.attachment(NODE_TABLE)["client_id"].tolist() == [4]
        assert run.attachment(NODE_NAME_TABLE)["node_id"].tolist() == [3]


def test_a_legacy_failure_that_names_its_client_is_recorded_under_that_name(tmp_path):
    """A legacy client's FitRes with a status other than OK carries metrics too: its client-id was dropped and the
    failure filed under the node id, the client later seen under its own id, as two clients."""
    weights = ndarrays_to_parameters([np.zeros((2, 2), np.float32)])
    sent = ndarrays_to_parameters([np.ones((2, 2), np.float32)])
    nodes = [_Node(3), _Node(5)]
    with Recorder(tmp_path / "run.h5") as rec:
        strategy = RecordingStrategy(_AskAll(nodes), rec)
        strategy.configure_fit(1, weights, None)
        failed = FitRes(Status(Code.FIT_NOT_IMPLEMENTED, "no data yet"), ndarrays_to_parameters([]), 0, {"client-id": 7})
        strategy.aggregate_fit(1, [(nodes[1], FitRes(Status(Code.OK, ""), sent, 10, {"client-id": 1}))], [(nodes[0], failed)])
        strategy.configure_fit(2, weights, None)
        strategy.aggregate_fit(2, [(node, FitRes(Status(Code.OK, ""), sent, 10, {"client-id": cid})) for node, cid in zip(nodes, (7, 1))], [])
    with open_run(tmp_path / "run.h5") as run:
        assert run.failures(1) == {"7": "failed (FIT_NOT_IMPLEMENTED): no data yet"}
        assert run.clients(1) == ["1"] and run.clients(2) == ["1", "7"]


def test_a_client_that_fails_before_it_names_itself_is_found_through_the_node_table(tmp_path):
    """A Message API error reply carries no content: a client whose ClientApp raises in round 1 is recorded under its
    node id there and under its partition id from round 2 (committed rounds are not rewritten); the node table pairs
    the two, as docs/flower.md shows."""
    clients = Clients(raise_at={1: 1})
    _record_three_nodes(tmp_path / "run.h5", clients.app, 2)
    with open_run(tmp_path / "run.h5") as run:
        table = run.attachment(NODE_TABLE)
        failures = run.failures(1)
        assert run.clients(1) == ["0", "2"] and run.clients(2) == ["0", "1", "2"]
    assert list(failures) == [str(clients.node_ids[1])] and "boom in partition 1" in failures[str(clients.node_ids[1])]
    named = {str(node): str(cid) for cid, node in zip(table["client_id"], table["node_id"])}  # as docs/flower.md
    assert {named.get(cid, cid): reason for cid, reason in failures.items()} == {"1": failures[str(clients.node_ids[1])]}


def test_the_reports_say_which_client_a_node_that_failed_before_it_named_itself_became(tmp_path):
    """inspect and the audit's reports showed such a failure under the bare node id (a random 64-bit number): they now
    say which client that node named itself as, from the node table, in the run facts and beside the id."""
    from rich.console import Console

    from fedforensics.analysis import analyze
    from fedforensics.report.html import render_html
    from fedforensics.report.terminal import render_summary
    from fedforensics.summary import summarize

    clients = Clients(raise_at={1: 1})
    _record_three_nodes(tmp_path / "run.h5", clients.app, 2)
    node = str(clients.node_ids[1])
    with open_run(tmp_path / "run.h5") as run:
        summary, report = summarize(run), analyze(run)
    assert list(summary.failed_replies) == [node] and summary.failed_nodes == {node: ["1"]}
    console = Console(width=400, record=True, color_system=None)
    render_summary(console, summary)
    text = console.export_text()
    assert f"1: {node} (Flower node of client 1) (round 1)" in text and f"1:{node} (Flower node of client 1)" in text
    assert f'<span class="id">{node} (Flower node of client 1)</span> (round 1: ' in render_html(report)
    assert report.summary.to_json()["failed_nodes"] == {node: ["1"]}


def test_a_text_id_longer_than_the_recorder_takes_names_no_client(tmp_path):
    """An id the recorder refuses for its length (1,025 characters) names no client: taken as the client's name, its
    reply became a failure under it, and recording that failure raised, losing the round."""
    _record_by_hand(tmp_path / "run.h5", [[(3, {"client-id": "n" * 1025}, 10), (5, {"client-id": "n" * 1024}, 10)]])
    with open_run(tmp_path / "run.h5") as run:
        assert run.clients(1) == ["3", "n" * 1024] and not run.failures(1)
