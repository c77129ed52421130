"""topk_comm over a torch.distributed process group: the table of collectives that the vocab-sharded calls
(topk.shard) hand to libtopk, filled with ctypes callbacks that run torch.distributed's collectives on
CPU tensors laid over libtopk's own host buffers (torch.frombuffer: no copy).

Only calls that torch 1.13 (Debian's python3-torch, what CI runs) already has on gloo: all_gather into a
list of views, gather, all_reduce on int64.

allreduce_u64 on int64 tensors, since gloo has no uint64: a sum is the same bits in two's complement
(libtopk's sums stay below 2^63 anyway), and a max runs on the values with their top bit flipped, which
maps the unsigned order onto the signed one exactly. The max is asked for 64-bit composites whose top
bit is often set (shard_draw.c: the best element, the one named in a settled bin), so the flip matters.

A callback never lets an exception into C (ctypes would print it and return 0, "success"): it keeps the
exception in self.failure and returns 1, libtopk returns TOPK_ERR_COMM, and topk.shard raises that status
with the exception as its cause.
"""
import ctypes

from ._library import ALLGATHER, ALLREDUCE_U64, COMM_MAX, GATHER, Comm

_SIGN = -(1 << 63)  # int64 with the top bit alone


class TorchComm:
    """A topk_comm (self.table) for `group` (None: the default group), valid while this object lives. The
    callbacks close over the group; the table's handle is unused. failure: the first exception a callback
    caught, or None."""

    def __init__(self, group=None):
        import torch
        import torch.distributed as dist
        self.torch, self.dist, self.group = torch, dist, group
        self.failure = None
        self.rank, self.size = dist.get_rank(group), dist.get_world_size(group)
        self._callbacks = (ALLGATHER(self._guard(self._allgather)), GATHER(self._guard(self._gather)),
                           ALLREDUCE_U64(self._guard(self._allreduce_u64)))
        self.table = Comm(None, self.rank, self.size, 0, *self._callbacks)

    def global_rank(self, group_rank):
        """The default group's rank of this group's rank `group_rank` (torch's gather takes that)."""
        if self.group is None:
            return group_rank
        get = getattr(self.dist, "get_global_rank", None) or self.dist.distributed_c10d._get_global_rank
        return get(self.group, group_rank)

    def _guard(self, op):
        def call(*args):
            try:
                op(*args)
                return 0
            except BaseException as error:  # noqa: B036 (nothing may cross into C; raise_failure re-raises it)
                self.failure = self.failure or error
                return 1
        return call

    def _bytes(self, address, count, dtype=None):
        """A CPU tensor over count elements (bytes, or int64 with dtype) of libtopk's memory at address."""
        torch = self.torch
        ctype = ctypes.c_uint8 if dtype is None else ctypes.c_int64
        return torch.frombuffer((ctype * count).from_address(address), dtype=dtype or torch.uint8)

    def _allgather(self, handle, send, recv, size, stream):
        if size == 0:
            return
        received = self._bytes(recv, size * self.size).view(self.size, size)
        self.dist.all_gather(list(received.unbind(0)), self._bytes(send, size), group=self.group)

    def _gather(self, handle, send, recv, size, root, stream):
        if size == 0:
            return
        received = list(self._bytes(recv, size * self.size).view(self.size, size).unbind(0)) if recv else None
        self.dist.gather(self._bytes(send, size), received, dst=self.global_rank(root), group=self.group)

    def _allreduce_u64(self, handle, send, recv, count, op, stream):
        if count == 0:
            return
        result = self._bytes(recv, count, self.torch.int64)
        result.copy_(self._bytes(send, count, self.torch.int64))
        if op == COMM_MAX:
            result.bitwise_xor_(_SIGN)
            self.dist.all_reduce(result, self.dist.ReduceOp.MAX, group=self.group)
            result.bitwise_xor_(_SIGN)
        else:
            self.dist.all_reduce(result, self.dist.ReduceOp.SUM, group=self.group)
