"""The run format: names, version and layout, in one place.

The writer (:mod:`recorder`) and the reader (:mod:`fedforensics.run`) both take
every name from here; ``docs/format.md`` is the prose version of this module.

Layout of format version 1 (``/`` is the file's root group)::

    /                         attrs: format, format_version, recorder_version, created, meta (JSON),
                              finished (optional: False until the writer closed the run normally)
    /layers/name              (L,) str      layer names, in the order of the first state
    /layers/dtype             (L,) str      numpy dtype of the layer in the global state
    /layers/shape             (L,) vlen int shape of each layer
    /layers/analysable        (L,) bool     False for integer buffers (e.g. num_batches_tracked)
    /rounds/<R>/              one group per committed round, R zero-padded (ROUND_DIGITS)
        attrs: round, complete
        clients               (n,) str      client ids in recording order
        num_samples           (n,) int64
        nonfinite             (n,) int64    NaN/Inf values in each client's update
        metric_names          (m,) str
        metrics               (n, m) float64  NaN where a client did not report a metric
        global/<i>            layer i of the global state the clients received, native dtype
        updates/<i>           (n, *shape_i) float32: client update (local - global) of layer i
        failures/clients      (k,) str      clients whose reply failed this round (optional)
        failures/reasons      (k,) str
        global_metrics/names  (g,) str      evaluation of the model aggregated in this round (optional)
        global_metrics/values (g,) float64
    /final/<i>                final global state (optional)
    /ground_truth/malicious   (k,) str      true malicious client ids (optional)
    /attachments/<name>/<key> arrays attached by the trainer (optional), e.g. clean_data/x, clean_data/y
"""

from __future__ import annotations

from collections.abc import Mapping

FORMAT_NAME = "fedforensics-run"
FORMAT_VERSION = 1
#: Versions this code can read. A file newer than FORMAT_VERSION is refused.
READABLE_VERSIONS = (1,)

# root attributes
ATTR_FORMAT = "format"
ATTR_VERSION = "format_version"
ATTR_RECORDER_VERSION = "recorder_version"
ATTR_CREATED = "created"
ATTR_META = "meta"
ATTR_FINISHED = "finished"
#: How deep ``meta``'s JSON may nest (objects and arrays within one another): a run's settings need a
#: few levels; hundreds break the JSON of every report that carries the meta.
META_MAX_DEPTH = 64

# groups
LAYERS = "layers"
ROUNDS = "rounds"
FINAL = "final"
GROUND_TRUTH = "ground_truth"
ATTACHMENTS = "attachments"

# layer table
LAYER_NAME = "name"
LAYER_DTYPE = "dtype"
LAYER_SHAPE = "shape"
LAYER_ANALYSABLE = "analysable"

# inside a round group
ATTR_ROUND = "round"
ATTR_COMPLETE = "complete"
CLIENTS = "clients"
NUM_SAMPLES = "num_samples"
NONFINITE = "nonfinite"
METRIC_NAMES = "metric_names"
METRICS = "metrics"
GLOBAL = "global"
UPDATES = "updates"
FAILURES = "failures"
FAILURE_CLIENTS = "clients"
FAILURE_REASONS = "reasons"
GLOBAL_METRICS = "global_metrics"
GLOBAL_METRIC_NAMES = "names"
GLOBAL_METRIC_VALUES = "values"
MALICIOUS = "malicious"

# attachments the Flower adapter (recorder.flower) writes: which node reported which client id, numbered and named
FLOWER_NODE_TABLE = "flower_nodes"
FLOWER_NODE_NAME_TABLE = "flower_node_names"

ROUND_DIGITS = 10
#: Round numbers and sample counts are stored as int64: the largest either may be.
INT64_MAX = 2**63 - 1
UPDATE_DTYPE = "float32"
#: Suffix of the undo journal that exists beside a run file while a round is being written.
JOURNAL_SUFFIX = ".journal"
#: A new run ``<file>`` is created as ``.<file>.new/<file>`` beside it and renamed into place at its first commit:
#: nothing at ``<file>`` is a run (nor is a run it replaces gone) before there is one to read.
CREATION_SUFFIX = ".new"


def round_key(round_number: int) -> str:
    """Name of the group that holds round ``round_number``."""
    return f"{round_number:0{ROUND_DIGITS}d}"


def layer_key(index: int) -> str:
    """Name of the dataset that holds layer ``index`` inside ``global/``, ``updates/``, ``final/``."""
    return f"{index:04d}"


def nests_deeper(value: object, limit: int = META_MAX_DEPTH) -> bool:
    """Whether objects and arrays (mappings, lists, tuples) nest more than ``limit`` levels deep in ``value``,
    found without recursion and without walking further than ``limit + 1`` levels, each container of a level
    once (a value that holds itself is deeper than any limit, however often it does)."""
    level = [value]
    for _ in range(limit + 1):  # the containers at depth 1, 2, ..., limit + 1
        containers = list({id(v): v for v in level if isinstance(v, (Mapping, list, tuple))}.values())
        if not containers:
            return False
        level = [child for v in containers for child in (v.values() if isinstance(v, Mapping) else v)]
    return True
