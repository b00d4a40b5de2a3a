"""Record a Flower federation by wrapping its strategy: ``RecordingStrategy``.

>>> from recorder import Recorder
>>> from recorder.flower import RecordingStrategy
>>> with Recorder("run.h5") as rec:                                      # doctest: +SKIP
...     strategy = RecordingStrategy(FedAvg(), rec)                       # any Flower strategy
...     strategy.start(grid=grid, initial_arrays=arrays, num_rounds=3)

The only module of :mod:`recorder` that imports flwr (``pip install "fedforensics[flower]"``).
What is recorded, and under which client ids: ``docs/flower.md``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

try:
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
    from flwr.common import FitIns, FitRes, Parameters, Scalar, parameters_to_ndarrays
    from flwr.server.client_manager import ClientManager
    from flwr.server.client_proxy import ClientProxy
    from flwr.server.strategy import Strategy as LegacyStrategy
    from flwr.serverapp import Grid
    from flwr.serverapp.strategy import Result, Strategy
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without flwr
    raise ImportError('recorder.flower needs Flower: pip install "fedforensics[flower]"') from exc

from . import spec
from .checks import CLIENT_ID_MAX_LENGTH, RecorderError, _storable
from .writer import Recorder, RoundRecorder

__all__ = ["RecordingStrategy", "NUM_SAMPLES_KEY", "ID_KEYS", "NODE_TABLE", "NODE_NAME_TABLE"]

#: The reply metric that holds the client's sample count (Flower's convention).
NUM_SAMPLES_KEY = "num-examples"
#: Reply metrics that name the client, in order of precedence over the node id.
ID_KEYS = ("client-id", "partition-id")
#: Attachment mapping each reported client id to the Flower node(s) that sent it.
NODE_TABLE = spec.FLOWER_NODE_TABLE
#: Attachment mapping each client id reported as text to the Flower node(s) that sent it (UTF-8, NUL-padded rows).
NODE_NAME_TABLE = spec.FLOWER_NODE_NAME_TABLE


@dataclass(frozen=True)
class _Reply:
    """One node's answer to a training instruction, whatever the API."""

    node_id: int
    metrics: Mapping[str, Any]
    state: dict[str, np.ndarray] = field(default_factory=dict)
    problem: str = ""  # why there is no state to record
    config: Mapping[str, Any] = field(default_factory=dict)  # the reply's ConfigRecord values: a text id is there


class RecordingStrategy(Strategy, LegacyStrategy):
    """Record every training round of ``strategy`` into ``recorder``; change nothing else.

    Wraps a Message API strategy (``flwr.serverapp.strategy``: the global arrays are
    taken in ``configure_train``, the replies in ``aggregate_train``) or a legacy one
    (``flwr.server.strategy``: ``configure_fit`` / ``aggregate_fit``). Every call and
    attribute is the wrapped strategy's, with the same arguments: the replies, which
    can be read only once, are read into one list that is then handed on.

    It must sit OUTERMOST. Server-side DP clipping
    (``DifferentialPrivacyServerSideFixedClipping`` and the adaptive variant) rewrites
    the replies in place: wrapped by ``RecordingStrategy``, what the clients sent is
    recorded; wrapping it, only the clipped updates would be.

    Parameters
    ----------
    strategy
        The Flower strategy to record.
    recorder
        An open :class:`recorder.Recorder`. Flower's round ``r`` (from 1) is recorded as round ``r``.
    id_keys
        Reply metrics that name the client, by precedence; the Flower node id is used
        when a client reports none of them (see ``docs/flower.md``).
    layer_names
        Layer names for the legacy API, whose ``Parameters`` carry none (default "0", "1", ...).
    """

    def __init__(
        self,
        strategy: Strategy | LegacyStrategy,
        recorder: Recorder,
        *,
        id_keys: Sequence[str] = ID_KEYS,
        layer_names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(strategy, RecordingStrategy):  # the inner one's check told of an overridden start() (QA)
            raise TypeError("the strategy is a RecordingStrategy already: wrap it once")
        if isinstance(strategy, type) and issubclass(strategy, (Strategy, LegacyStrategy)):  # was "ABCMeta" (QA)
            raise TypeError(f"pass a strategy, not its class: {strategy.__name__}(...)")
        if not isinstance(strategy, (Strategy, LegacyStrategy)):
            raise TypeError(f"not a Flower strategy: {type(strategy).__name__}")
        if isinstance(strategy, Strategy) and type(strategy).start is not Strategy.start:
            raise TypeError(
                f"{type(strategy).__name__} overrides start(): its rounds would bypass the recorder"
            )
        own = self.__dict__  # written directly: every other attribute write goes to the wrapped strategy
        own["strategy"] = strategy
        # a Message API strategy weights replies by its own key (FedAvg's `weighted_by_key`), looked up each round:
        # it may be set on the strategy later; the legacy API's replies carry num_examples, under NUM_SAMPLES_KEY
        samples_key = functools.partial(_weight_key, strategy) if isinstance(strategy, Strategy) else lambda: NUM_SAMPLES_KEY
        if not isinstance(recorder, Recorder):  # a path or None failed only once round 1 had trained (QA)
            raise TypeError(f"recorder must be an open recorder.Recorder, not {type(recorder).__name__}")
        if isinstance(id_keys, str):  # one key, not its characters (QA: "partition-id" became 'p', 'a', 'r', ...)
            id_keys = (id_keys,)
        # 5 failed as "'int' object is not iterable", and a key that is no name could never match a metric (QA)
        keys = tuple(id_keys) if isinstance(id_keys, Iterable) else (id_keys,)
        if not all(isinstance(key, str) and key for key in keys):
            raise TypeError(f"id_keys must be reply metric names (strings), not {id_keys!r}")
        own["_log"] = _RoundLog(recorder, keys, samples_key)
        if layer_names is not None and not isinstance(strategy, LegacyStrategy):  # it was ignored without a word (QA)
            raise TypeError("layer_names is for a legacy strategy (flwr.server.strategy), whose Parameters carry no "
                            "names; a Message API strategy's ArrayRecords carry their own")
        own["_layer_names"] = None if layer_names is None else list(layer_names)
        own["_evaluation_closes_round"] = False

    def __getattr__(self, name: str) -> Any:
        """Everything not defined here is the wrapped strategy's."""
        try:
            inner = self.__dict__["strategy"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting an attribute sets the wrapped strategy's (``wrapped.fraction_train = 0.5`` changes the strategy
        that runs), except this wrapper's own state."""
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["strategy"], name, value)

    def __repr__(self) -> str:
        return f"RecordingStrategy({self.strategy!r})"

    # -- Message API ----------------------------------------------------------------
    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Flower's round loop; ``evaluate_fn``'s metrics become each round's global metrics, and the
        model it returns the run's final state.

        With ``evaluate_fn`` a round is written when its evaluation returns, otherwise
        when ``aggregate_train`` returns.
        """
        recorded_fn = None if evaluate_fn is None else self._recording(evaluate_fn)
        self._evaluation_closes_round = recorded_fn is not None
        try:
            result = super().start(
                grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config, recorded_fn
            )
        finally:
            self._evaluation_closes_round = False
            self._log.close()
        # the federation's model: without it an audit saw "final state: no" and trigger inversion took the global
        # model of the last round's start, one round short (QA: docs/flower.md's two lines left it out)
        self._log.final(_arrays(result.arrays))
        return result

    def _recording(
        self, evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None]
    ) -> Callable[[int, ArrayRecord], MetricRecord | None]:
        """``evaluate_fn`` that also records its metrics and then writes the round."""

        def recorded_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            try:
                metrics = evaluate_fn(server_round, arrays)
                if metrics is not None:
                    self._log.evaluated(server_round, metrics)
                return metrics
            finally:
                self._log.close()

        return recorded_fn

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The wrapped strategy's messages; the global arrays are kept for this round."""
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self._log.sent(server_round, _arrays(arrays), [m.metadata.dst_node_id for m in messages])
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Record the replies as the clients sent them, then let the wrapped strategy aggregate them."""
        replies = list(replies)
        self._log.received(server_round, [_message_reply(m) for m in replies])
        try:
            result = self.strategy.aggregate_train(server_round, replies)
            if result[0] is None:
                self._log.not_aggregated(server_round)
            return result
        finally:
            if not self._evaluation_closes_round:
                self._log.close()

    def summary(self) -> None:
        """The wrapped strategy's summary."""
        self.strategy.summary()

    # -- both APIs (same names, different signatures) ----------------------------------
    def configure_evaluate(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped strategy's, unrecorded."""
        return self.strategy.configure_evaluate(*args, **kwargs)

    def aggregate_evaluate(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped strategy's, unrecorded."""
        return self.strategy.aggregate_evaluate(*args, **kwargs)

    # -- legacy API -----------------------------------------------------------------
    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """The wrapped strategy's."""
        return self.strategy.initialize_parameters(client_manager)

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """The wrapped strategy's instructions; the global parameters are kept for this round."""
        instructions = list(self.strategy.configure_fit(server_round, parameters, client_manager))
        arrays = parameters_to_ndarrays(parameters)
        names = self._names(len(arrays))
        if len(names) != len(arrays):
            raise RecorderError(f"round {server_round}: {len(names)} layer names for {len(arrays)} arrays")
        self._log.sent(server_round, dict(zip(names, arrays)), [proxy.node_id for proxy, _ in instructions])
        return instructions

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Record the results and failures, then let the wrapped strategy aggregate them."""
        replies = [self._fit_reply(proxy, res) for proxy, res in results]
        replies += [  # a failed FitRes has metrics too: a client-id there names the failure's client
            _Reply(f[0].node_id, f[1].metrics or {}, problem=f"failed ({f[1].status.code.name}): {f[1].status.message}")
            for f in failures
            if isinstance(f, tuple)
        ]
        unattributed = [f"{type(f).__name__}: {f}" for f in failures if not isinstance(f, tuple)]
        self._log.received(server_round, replies, unattributed)
        try:
            return self.strategy.aggregate_fit(server_round, results, failures)
        finally:
            self._log.close()

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        """The wrapped strategy's."""
        return self.strategy.evaluate(server_round, parameters)

    def _names(self, count: int) -> list[str]:
        return self._layer_names if self._layer_names is not None else [str(i) for i in range(count)]

    def _fit_reply(self, proxy: ClientProxy, res: FitRes) -> _Reply:
        metrics = {**res.metrics, NUM_SAMPLES_KEY: res.num_examples}
        arrays = parameters_to_ndarrays(res.parameters)
        names = self._names(len(arrays))
        if len(names) != len(arrays):
            return _Reply(proxy.node_id, metrics, problem=f"not recorded: {len(arrays)} arrays for {len(names)} layers")
        return _Reply(proxy.node_id, metrics, state=dict(zip(names, arrays)))


def _weight_key(strategy: Strategy) -> str:
    """The metric a Message API strategy weights replies by (FedAvg's ``weighted_by_key``), through wrappers that
    hold the strategy they wrap as ``.strategy`` (the differential-privacy ones); ``num-examples`` otherwise."""
    seen = set()
    while id(strategy) not in seen:
        seen.add(id(strategy))
        key = getattr(strategy, "weighted_by_key", None)
        if isinstance(key, str):
            return key
        inner = getattr(strategy, "strategy", None)
        if inner is None:
            break
        strategy = inner
    return NUM_SAMPLES_KEY


class _RoundLog:
    """The round being recorded, and the client ids learnt for Flower nodes."""

    def __init__(self, recorder: Recorder, id_keys: tuple[str, ...], samples_key: Callable[[], str]) -> None:
        self._rec = recorder
        self._id_keys = id_keys
        self._samples_key = samples_key  # asked each round
        self._sent: tuple[int, dict[str, np.ndarray], list[int]] | None = None
        self._open: RoundRecorder | None = None
        self._unaggregated: int | None = None  # the round whose strategy returned no model
        self._learnt: dict[int, str] = {}  # node id -> id its client reported
        self._pairs: set[tuple[int | str, int]] = set()  # (reported id, node id)
        self._pairs_written = 0
        self._wrote_round = False  # whether a round of this strategy is in the file

    def sent(self, server_round: int, global_state: dict[str, np.ndarray], node_ids: list[int]) -> None:
        """The global model went to ``node_ids`` (nothing is recorded for a round that asked no node).

        A round the recorder would refuse (closed, or its number not after the last one recorded: ``start()`` run
        twice on one recorder) is refused here, before the clients train, not once they have (QA)."""
        self.close()
        if node_ids:
            self._rec._check_next_round(int(server_round), ": record each federation into a Recorder of its own")
        self._sent = (server_round, global_state, node_ids) if node_ids else None

    def received(self, server_round: int, replies: list[_Reply], unattributed: Sequence[str] = ()) -> None:
        """Open the round and record every reply, and every node asked that did not reply."""
        if self._sent is None or self._sent[0] != server_round:
            return
        number, global_state, asked = self._sent
        self._sent = None
        replied = {reply.node_id for reply in replies}
        missing = sorted(set(asked) - replied)
        if len(missing) == len(unattributed) == 1:
            missing_problem = f"failed: {unattributed[0]}"
        elif unattributed:
            missing_problem = f"no reply (errors this round not attributable to a node: {'; '.join(unattributed)})"
        else:
            missing_problem = "no reply"
        entries = [*replies, *(_Reply(node, {}, problem=missing_problem) for node in missing)]
        samples_key = self._samples_key()
        rnd = self._rec.round(number, global_state).__enter__()
        try:
            for cid, entry in sorted(self._identify(entries), key=lambda pair: _order(pair[0])):
                problem = entry.problem or _misfit(entry.state, global_state)
                if problem:
                    rnd.failure(cid, problem)
                    continue
                num_samples, metrics = _samples_and_metrics(entry.metrics, self._id_keys, samples_key)
                try:
                    rnd.client(cid, entry.state, num_samples=num_samples, metrics=metrics)
                except RecorderError as exc:  # checked before anything is written: the round goes on
                    rnd.failure(cid, f"not recorded: {exc}")
        except BaseException:
            rnd.__exit__(*sys.exc_info())  # nothing of a half-recorded round is kept
            raise
        self._open = rnd

    def not_aggregated(self, server_round: int) -> None:
        """The strategy aggregated no model in ``server_round``: an evaluation then is of the previous model."""
        if self._open is not None and self._open.number == server_round:
            self._unaggregated = server_round

    def evaluated(self, server_round: int, metrics: Mapping[str, Any]) -> None:
        """The model aggregated in ``server_round`` was evaluated: its global metrics."""
        if self._open is not None and self._open.number == server_round and self._unaggregated != server_round:
            # a name the file cannot hold (a NUL) is left out, as a reply's metric is, not the round's other metrics
            self._open.global_metrics({k: v for k, v in metrics.items() if _is_number(v) and _storable_name(k)})

    def close(self) -> None:
        """Write the open round (durable from here on) and any new node of the node table."""
        if self._open is None:
            return
        rnd, self._open = self._open, None
        rnd.__exit__(None, None, None)
        self._wrote_round = True
        if len(self._pairs) > self._pairs_written:
            numbered = sorted(pair for pair in self._pairs if isinstance(pair[0], int))
            named = sorted(pair for pair in self._pairs if isinstance(pair[0], str))
            if numbered:
                self._rec.attach(
                    NODE_TABLE,
                    client_id=np.array([cid for cid, _ in numbered], dtype=np.int64),
                    node_id=np.array([node for _, node in numbered], dtype=np.uint64),
                )
            if named:  # an attachment holds numbers: each id as its UTF-8 bytes, one NUL-padded row each
                self._rec.attach(
                    NODE_NAME_TABLE,
                    client_id=_text_rows([cid for cid, _ in named]),
                    node_id=np.array([node for _, node in named], dtype=np.uint64),
                )
            self._pairs_written = len(self._pairs)

    def final(self, state: dict[str, np.ndarray]) -> None:
        """The model the federation ended with, once a round is recorded (it replaces an earlier final state)."""
        if self._wrote_round:
            self._rec.final(state)

    def _identify(self, entries: list[_Reply]) -> list[tuple[str, _Reply]]:
        """Client id of each entry: reported id, else the one learnt for its node, else the node id.

        Ids reported in this round are given first, then ids learnt in earlier rounds (a client that
        moved to a new node reports its id there while its old node may still be asked), the lower
        node id first within each; an entry whose claim is taken, or that claims none, gets its node
        id, and ``node-<node id>`` when a claimed id is already that number (node 3 reporting 5
        while node 5 reports nothing).
        """
        reporting: set[int] = set()
        for entry in entries:
            reported = self._reported_id(entry)
            if reported is not None:
                reporting.add(entry.node_id)
                self._learnt[entry.node_id] = str(reported)
                self._pairs.add((reported, entry.node_id))
        used: set[str] = set()
        named: list[tuple[str, _Reply]] = []
        unnamed: list[_Reply] = []
        for entry in sorted(entries, key=lambda e: (e.node_id not in reporting, e.node_id)):
            claim = self._learnt.get(entry.node_id)
            if claim is None or claim in used:
                unnamed.append(entry)
                continue
            used.add(claim)
            named.append((claim, entry))
        for entry in unnamed:
            cid = str(entry.node_id) if str(entry.node_id) not in used else f"node-{entry.node_id}"
            used.add(cid)
            named.append((cid, entry))
        return named

    def _reported_id(self, entry: _Reply) -> int | str | None:
        """The first of the id keys whose value, in the reply's metrics or else its ConfigRecord, is an integer
        (64-bit signed, as Flower's metrics) or text the recorder takes as an id (Flower's metrics hold no text: a client
        named "site-a/7" reports it in a ConfigRecord, and was recorded under its node id, the name lost)."""
        for key in self._id_keys:
            for value in (entry.metrics.get(key), entry.config.get(key)):
                if isinstance(value, str) and _storable_name(value) and 0 < len(value) <= CLIENT_ID_MAX_LENGTH:
                    return value
                number = _integral(value)
                if number is not None and -(2**63) <= number < 2**63:
                    return number
        return None


def _message_reply(message: Message) -> _Reply:
    node = message.metadata.src_node_id
    if message.has_error():
        return _Reply(node, {}, problem=f"error reply (code {message.error.code}): {message.error.reason.strip()}")
    content = message.content
    metrics = {key: value for record in content.metric_records.values() for key, value in record.items()}
    config = {key: value for record in content.config_records.values() for key, value in record.items()}
    records = list(content.array_records.values())
    if len(records) != 1:
        problem = f"not recorded: the reply carries {len(records)} ArrayRecords, not 1"
        return _Reply(node, metrics, problem=problem, config=config)
    try:
        return _Reply(node, metrics, state=_arrays(records[0]), config=config)
    except (TypeError, ValueError) as exc:
        return _Reply(node, metrics, problem=f"not recorded: unreadable array ({exc})", config=config)


def _text_rows(texts: list[str]) -> np.ndarray:
    """``texts`` as a (len, longest) uint8 matrix: each one's UTF-8 bytes, padded with NUL (which no id holds)."""
    encoded = [text.encode("utf-8") for text in texts]
    rows = np.zeros((len(encoded), max(map(len, encoded))), dtype=np.uint8)
    for row, data in zip(rows, encoded):
        row[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    return rows


def _arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {key: array.numpy() for key, array in record.items()}


def _misfit(state: dict[str, np.ndarray], global_state: dict[str, np.ndarray]) -> str:
    """Why ``state`` cannot be recorded against ``global_state`` ("" when it can)."""
    if set(state) != set(global_state):
        extra, missing = sorted(set(state) - set(global_state)), sorted(set(global_state) - set(state))
        return f"not recorded: layers differ from the global model's (extra {extra}, missing {missing})"
    for name, array in state.items():
        if np.shape(array) != global_state[name].shape:
            return f"not recorded: layer {name!r} has shape {np.shape(array)}, the global model {global_state[name].shape}"
    return ""


def _samples_and_metrics(
    raw: Mapping[str, Any], id_keys: tuple[str, ...], samples_key: str = NUM_SAMPLES_KEY
) -> tuple[int, dict[str, float]]:
    """Sample count from ``samples_key`` (the strategy's weight, ``num-examples`` by default); the other numbers,
    ids excepted, are metrics.

    A count that is not an integer in 0 … 2**63 − 1 (the file's int64) is kept as a metric, with 0 samples.
    """
    metrics = {key: float(value) for key, value in raw.items() if key not in id_keys and _is_number(value)}
    count = _integral(raw.get(samples_key))
    if count is None or not 0 <= count <= spec.INT64_MAX:
        return 0, metrics
    del metrics[samples_key]
    return count, metrics


def _storable_name(name: Any) -> bool:
    """Whether the file can hold ``name`` as a metric's name or a client id (the recorder's own test: text of at most
    1,024 characters without a NUL or a lone surrogate)."""
    if not isinstance(name, str):
        return False
    try:
        _storable(name, "metric name", "")
    except RecorderError:
        return False
    return True


def _is_number(value: Any) -> bool:
    """A real number a float64 can hold (an int beyond ~1.8e308 cannot: it is not a metric)."""
    if not isinstance(value, Real) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _integral(value: Any) -> int | None:
    if _is_number(value) and float(value).is_integer():
        return int(value)
    return None


def _order(cid: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then the others."""
    return (0, int(cid), "") if cid.isdigit() else (1, 0, cid)
