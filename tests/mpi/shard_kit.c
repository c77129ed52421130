/*
 * The vocab-sharded tests' kit (shard_kit.h).
 */
#include "shard_kit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

const char *layout_name(layout l)
{
    static const char *const names[LAYOUT_COUNT] = {"even", "tiny first shard", "empty last shard", "reversed"};
    return names[l];
}

const char *pattern_name(pattern p)
{
    static const char *const names[PATTERN_COUNT] = {"random", "ties", "specials"};
    return names[p];
}

/* Columns [v * i / parts, v * (i + 1) / parts) of a v-column span. */
static void split(int64_t first, int64_t v, int parts, int i, int64_t *offset, int64_t *vocab)
{
    *offset = first + v * i / parts;
    *vocab = first + v * (i + 1) / parts - *offset;
}

void layout_shard(layout l, int ranks, int rank, int64_t global_vocab, int64_t *offset, int64_t *vocab)
{
    if (ranks == 1 || l == LAYOUT_EVEN) {
        split(0, global_vocab, ranks, rank, offset, vocab);
    } else if (l == LAYOUT_TINY) {
        if (rank == 0) *offset = 0, *vocab = 1;
        else split(1, global_vocab - 1, ranks - 1, rank - 1, offset, vocab);
    } else if (l == LAYOUT_EMPTY) {
        if (rank == ranks - 1) *offset = global_vocab / 2, *vocab = 0;
        else split(0, global_vocab, ranks - 1, rank, offset, vocab);
    } else { /* rank q weighs q + 1 and the last rank comes first */
        int64_t total = (int64_t)ranks * (ranks + 1) / 2, before = 0;
        for (int q = ranks - 1; q > rank; q--) before += q + 1;
        *offset = global_vocab * before / total;
        *vocab = global_vocab * (before + rank + 1) / total - *offset;
    }
}

/* A NaN with a random sign and payload. */
static uint32_t any_nan(topk_dtype dtype, rng *r) { return nan_bits(dtype, rng_next(r) & 1, (uint32_t)rng_next(r)); }

static uint32_t tie_value(topk_dtype dtype, rng *r)
{
    static const float values[] = {-1.0f, -0.0f, 0.0f, 1.0f, 2.0f};
    return rng_below(r, 64) == 0 ? any_nan(dtype, r) : encode_f32(dtype, values[rng_below(r, 5)]);
}

/* Row `row` of the specials: NaNs only; +inf and -inf; -inf only; +inf, -inf, NaN and a few finite. */
static uint32_t special_value(topk_dtype dtype, rng *r, int64_t row)
{
    switch (row % 4) {
    case 0: return any_nan(dtype, r);
    case 1: return inf_bits(dtype, rng_next(r) & 1);
    case 2: return inf_bits(dtype, true);
    default:
        switch (rng_below(r, 4)) {
        case 0: return inf_bits(dtype, false);
        case 1: return inf_bits(dtype, true);
        case 2: return any_nan(dtype, r);
        default: return encode_f32(dtype, (float)rng_normalish(r));
        }
    }
}

void *pattern_matrix(pattern p, topk_dtype dtype, int64_t batch, int64_t vocab, uint64_t seed)
{
    if (p == PATTERN_RANDOM) return random_matrix(dtype, batch, vocab, vocab, seed);
    rng r = {seed};
    void *m = malloc((size_t)(batch * vocab * dtype_bytes(dtype)));
    for (int64_t row = 0; row < batch; row++)
        for (int64_t c = 0; c < vocab; c++)
            store_bits(dtype, m, row * vocab + c, p == PATTERN_TIES ? tie_value(dtype, &r) : special_value(dtype, &r, row));
    return m;
}

topk_shard take_shard(const void *whole, topk_dtype dtype, int64_t batch, int64_t global_vocab, layout l)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    topk_shard shard = {.dtype = dtype, .batch = batch, .global_vocab = global_vocab};
    layout_shard(l, size, rank, global_vocab, &shard.column_offset, &shard.vocab);
    if (shard.vocab == 0) return shard;
    shard.row_stride = shard.vocab + 3;
    int elem = dtype_bytes(dtype);
    char *data = malloc((size_t)(batch * shard.row_stride * elem));
    for (int64_t row = 0; row < batch; row++) {
        memcpy(data + row * shard.row_stride * elem, (const char *)whole + (row * global_vocab + shard.column_offset) * elem,
               (size_t)(shard.vocab * elem));
        for (int64_t c = shard.vocab; c < shard.row_stride; c++)
            store_bits(dtype, data, row * shard.row_stride + c, nan_bits(dtype, false, 1));
    }
    shard.data = data;
    return shard;
}

void kit_start(kit *k, int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    *k = (kit){0};
    MPI_Comm_rank(MPI_COMM_WORLD, &k->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &k->size);
    topk_status s = topk_comm_mpi(MPI_COMM_WORLD, &k->comm);
    if (s != TOPK_OK) {
        fprintf(stderr, "rank %d: topk_comm_mpi: %s\n", k->rank, topk_strerror(s));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

bool kit_check(kit *k, bool ok, const char *what, const char *fmt, ...)
{
    k->checks++;
    if (ok) return true;
    if (++k->failures <= 20) { /* the first few say enough */
        char message[512];
        va_list args;
        va_start(args, fmt);
        vsnprintf(message, sizeof message, fmt, args);
        va_end(args);
        fprintf(stderr, "FAIL rank %d/%d: %s: %s\n", k->rank, k->size, what, message);
    }
    return false;
}

int kit_finish(kit *k, const char *program)
{
    long mine[2] = {k->checks, k->failures}, all[2];
    MPI_Allreduce(mine, all, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (k->rank == 0)
        printf("%s, %d ranks: %ld checks, %ld failures\n", program, k->size, all[0], all[1]);
    MPI_Finalize();
    return all[1] == 0 && all[0] > 0 ? 0 : 1;
}

topk_ctx *kit_context(topk_backend backend)
{
    topk_ctx *ctx;
    topk_status s = topk_ctx_create(&ctx, backend);
    if (s != TOPK_OK) {
        fprintf(stderr, "topk_ctx_create(%s): %s\n", topk_backend_name(backend), topk_strerror(s));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return ctx;
}
