"""The vocab-sharded calls with the exchange done by torch collectives on the tensors' own device: NCCL for
CUDA tensors (topk.shard's default for them), gloo for CPU tensors (exchange="tensors"). Every step is a
torch op or a libtopk call enqueued on torch's current stream and the collectives are ordered after it by
torch, so selection never waits on the host.

Selection, exactly topk.topk on the concatenated rows (DESIGN.md, "Vocab-sharded rows", the same argument
as the C path's): the row's best k are each among their own shard's best min(k, n), so each rank takes
those with topk.topk, makes their columns global and sends them with their values and its (column offset,
count) in one all_gather. The receivers lay the candidates out in one row per batch row, blocks ordered by
column offset, each block best first as topk.topk returned it, and its padding (a rank with fewer than k
columns) after every real candidate. libtopk breaks ties by the smaller position; two tied candidates of one
block are in column order (topk.topk put them so), of two blocks in offset order: so position order is
global column order wherever it matters, and topk.topk over that row ranks the candidates as the whole row
ranks them. The padding is the order's last value (-inf, or NaN for the smallest, libtopk's every NaN being
one key) after every real candidate, so it never displaces one: there are always k real ones.

Sampling with a top-k list (greedy, or 1 < top_k <= 4096 and < vocab, every row), like the C path: the
list is the row's best top_k under the sampling order (NaN as -inf, so NaN is made -inf first: it weighs
0 either way), found as above, and libtopk samples it. topk_sample's weights depend on the vocab only
through floor(log2 vocab), its draw not at all: the list is padded with -inf to 2^floor(log2 vocab)
columns, which libtopk then samples exactly as the whole row (a -inf weighs 0 and loses every tie), and the
drawn position is mapped back to its global column. Other rows (top-p or min-p without a list, plain
temperature) gather the whole rows (moving the logits, with one host synchronisation for the shard
widths): the C path's integer all-reduces on the device are the step that remains.

No agreement step: unlike the C path, a call that differs between ranks (k, vocab, shards that do not tile
the row) is not detected, and the ranks may wait in a collective until the group's timeout.
"""
import math

from .sampling import sample as sample_rows, sampling_params
from .select import TopK, topk
from ._arrays import Matrix

_LIST_MOST = 4096  # as src/shard/shard_sample.c: a longer top_k takes the whole-row way


def select(x, k, column_offset, global_vocab, group, root, largest, backend):
    """shard_topk with the exchange in torch collectives (topk.shard: its arguments, checked there)."""
    import torch.distributed as dist
    rows = _rows(x)
    if k == 0 or rows.shape[0] == 0:
        empty = x.new_empty(x.shape[:-1] + (k,))
        return TopK(empty, empty.long()) if _receives(dist, group, root) else None
    merged = _merged_candidates(rows, k, column_offset, group, largest, backend, _receives(dist, group, root))
    if merged is None:
        return None
    values, positions = topk(merged.values, k, largest=largest, backend=backend)
    shape = x.shape[:-1] + (k,)
    return TopK(values.reshape(shape), merged.columns(positions).reshape(shape))


def sample(x, column_offset, global_vocab, filters, seed, offset, group, root, return_probs, backend):
    """shard_sample with the exchange in torch collectives; filters: (temperature, top_k, top_p, min_p)."""
    import torch
    import torch.distributed as dist
    rows = _rows(x)
    m = Matrix(rows, -1, False, "logits_shard")
    params, per_row = sampling_params(m, *filters, seed, offset)  # checks every argument, here and now
    if not m.batch:
        tokens, probs = rows.new_empty(x.shape[:-1], dtype=torch.int64), rows.new_empty(x.shape[:-1], dtype=torch.float32)
        return None if not _receives(dist, group, root) else (tokens, probs) if return_probs else tokens
    lengths = _list_lengths(params, per_row, m.batch, global_vocab)
    width = 1 << (global_vocab.bit_length() - 1)  # the same floor(log2) as the vocab: the same weights
    kwargs = dict(seed=seed, offset=offset, return_probs=True, backend=backend)
    if min(lengths) > 0 and max(lengths) <= width:
        longest = max(lengths)
        sampling_order = rows.nan_to_num(nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))
        merged = _merged_candidates(sampling_order, longest, column_offset, group, True, backend,
                                    _receives(dist, group, root))
        if merged is None:
            return None
        ranked = topk(merged.values, longest, backend=backend)
        padded = torch.full((m.batch, width), float("-inf"), dtype=rows.dtype, device=rows.device)
        padded[:, :longest] = ranked.values
        tokens, probs = sample_rows(padded, *filters, **kwargs)
        tokens = merged.columns(ranked.indices.gather(1, tokens[:, None])).squeeze(1)
    else:
        whole = _whole_rows(rows, column_offset, global_vocab, group, _receives(dist, group, root))
        if whole is None:
            return None
        tokens, probs = sample_rows(whole, *filters, **kwargs)
    tokens, probs = tokens.reshape(x.shape[:-1]), probs.reshape(x.shape[:-1])
    return (tokens, probs) if return_probs else tokens


def _rows(x):
    """x (..., n) as a matrix of rows (a view where it can be); n may be 0 (an empty shard)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def _receives(dist, group, root):
    return root is None or root == dist.get_rank(group)


def _list_lengths(params, per_row, batch, global_vocab):
    """Each row's top-k list length as sample_list_length gives it (0: the row has none)."""
    temperatures, top_ks = per_row[0], per_row[1]
    lengths = []
    for r in range(batch):
        t = temperatures[r] if temperatures is not None else params.temperature
        k = top_ks[r] if top_ks is not None else params.top_k
        lengths.append(1 if t == 0.0 or k == 1 else k if 1 < k < global_vocab and k <= _LIST_MOST else 0)
    return lengths


class _Merged:
    """The candidates of every rank as one row per batch row (values, [B, ranks * k]) and the way back from
    a position in it to the global column."""

    def __init__(self, values, where, columns):
        self.values, self._where, self._columns = values, where, columns

    def columns(self, positions):
        return self._columns.take(self._where.gather(1, positions))


def _merged_candidates(rows, k, column_offset, group, largest, backend, receives):
    """Each rank's best min(k, n) of each row, exchanged in one all_gather and laid out as the module's
    docstring says; None where the result is not received (that rank still takes part in the all_gather)."""
    import torch
    import torch.distributed as dist
    batch, n = rows.shape
    kept, size, device = min(k, n), dist.get_world_size(group), rows.device
    # One buffer of bytes, so one collective: global columns (int64), (offset, count), values.
    span, elem = batch * k, rows.element_size()
    at_meta, at_values = span * 8, span * 8 + 16
    row_bytes = -(-(at_values + span * elem) // 8) * 8
    send = torch.empty(row_bytes, dtype=torch.uint8, device=device)
    columns = send[:at_meta].view(torch.int64).view(batch, k)
    values = send[at_values:at_values + span * elem].view(rows.dtype).view(batch, k)
    if kept < k:
        values[:, kept:] = float("-inf") if largest else float("nan")  # the order's last value
        columns[:, kept:] = -1
    if kept:
        own = topk(rows, kept, largest=largest, backend=backend)
        values[:, :kept] = own.values
        columns[:, :kept] = own.indices + column_offset
    meta = send[at_meta:at_values].view(torch.int64)
    meta[0].fill_(column_offset)  # fill_, not a copy from host memory, which would wait for the stream
    meta[1].fill_(kept)
    received = torch.empty(size, row_bytes, dtype=torch.uint8, device=device)
    all_gather(received, send, group)
    if not receives:
        return None
    got_meta = received[:, at_meta:at_values].view(torch.int64)
    order = torch.sort(got_meta[:, 0], stable=True).indices  # blocks by column offset
    counts = got_meta[order, 1]
    j = torch.arange(k, device=device)
    # Each (block, j)'s place: the real candidates packed in block order, then all the padding.
    place = torch.where(j < counts[:, None], (counts.cumsum(0) - counts)[:, None] + j,
                        span * size + j + k * torch.arange(size, device=device)[:, None])
    source = torch.argsort(place.reshape(-1))  # the (block, j) at each place
    source = order[source // k] * span + source % k  # as an index into one rank's [batch, k] of the gathered
    where = source[None, :] + (torch.arange(batch, device=device) * k)[:, None]
    gathered_values = received[:, at_values:at_values + span * elem].view(rows.dtype)
    return _Merged(gathered_values.take(where), where, received[:, :at_meta].view(torch.int64))


def all_gather(received, send, group):
    """received[r] = rank r's send, for a received of shape (ranks, send.numel()): NCCL's all_gather into one
    tensor where the group has it, else a list of views (what torch 1.13's gloo has). As bytes: gloo has no
    bfloat16."""
    import torch
    import torch.distributed as dist
    received, send = received.view(torch.uint8), send.view(torch.uint8)
    if received.is_cuda and hasattr(dist, "all_gather_into_tensor"):
        dist.all_gather_into_tensor(received, send, group=group)
    else:
        dist.all_gather(list(received.unbind(0)), send, group=group)


def _whole_rows(rows, column_offset, global_vocab, group, receives):
    """The concatenated rows, [batch, global_vocab], gathered from every rank's shard; None where the result
    is not received. The shards' widths are learnt first (one host synchronisation): all_gather takes equal
    sizes, so every shard is padded to the widest."""
    import torch
    import torch.distributed as dist
    size, device = dist.get_world_size(group), rows.device
    layout = torch.empty(size, 2, dtype=torch.int64, device=device)
    all_gather(layout, torch.tensor([column_offset, rows.shape[1]], dtype=torch.int64, device=device), group)
    layout = layout.tolist()
    widest = max(width for _, width in layout)
    send = rows.new_empty(rows.shape[0], widest)
    send[:, :rows.shape[1]] = rows
    received = rows.new_empty(size, rows.shape[0] * widest)
    all_gather(received, send.reshape(-1), group)
    if not receives:
        return None
    received = received.view(size, rows.shape[0], widest)
    whole = rows.new_empty(rows.shape[0], global_vocab)
    for r, (first, width) in enumerate(layout):
        whole[:, first:first + width] = received[r, :, :width]
    return whole
