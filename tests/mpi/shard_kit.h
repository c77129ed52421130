/*
 * What the vocab-sharded tests share (plain C programs run by ctest under mpirun -np 1..4): the MPI
 * communicator as a topk_comm, the ways a row is cut into shards, test rows that are hard to cut (ties
 * across every boundary, NaN and infinity rows), each rank's copy of its shard, and failure counting.
 *
 * Every rank builds the same whole matrix from a seed, keeps its own columns and calls the sharded
 * function; the ranks that receive the result compare it with the single-process answers on the whole
 * matrix, bit for bit. A program fails if any rank saw a difference, or if it checked nothing.
 */
#ifndef TOPK_SHARD_KIT_H
#define TOPK_SHARD_KIT_H

#include <stdbool.h>
#include <stdint.h>

#include "topk_mpi.h"

/* How the columns of a row are cut among the ranks. */
typedef enum layout {
    LAYOUT_EVEN,     /* V * q / ranks boundaries, in rank order */
    LAYOUT_TINY,     /* rank 0 holds one column (a shard smaller than any k > 1), the rest split the others */
    LAYOUT_EMPTY,    /* the last rank holds nothing (one rank alone holds everything) */
    LAYOUT_REVERSED, /* uneven shards in reverse: rank 0 holds the last columns */
    LAYOUT_COUNT
} layout;

const char *layout_name(layout l);

/* This rank's columns [*offset, *offset + *vocab) of a row of global_vocab under the layout. */
void layout_shard(layout l, int ranks, int rank, int64_t global_vocab, int64_t *offset, int64_t *vocab);

/* Test rows. */
typedef enum pattern {
    PATTERN_RANDOM,   /* gen.h's random_matrix: normal-ish values, specials in odd rows */
    PATTERN_TIES,     /* five values (-1, -0, +0, 1, 2) and a few NaNs: ties across every boundary */
    PATTERN_SPECIALS, /* a row of NaNs (any payload), of +-inf, of -inf only, of +inf and -inf and NaN */
    PATTERN_COUNT
} pattern;

const char *pattern_name(pattern p);

/* A dense batch x vocab matrix (malloc'd) of the pattern. */
void *pattern_matrix(pattern p, topk_dtype dtype, int64_t batch, int64_t vocab, uint64_t seed);

/* This rank's shard of a dense batch x global_vocab matrix: its own copy with row stride vocab + 3, the
 * padding full of NaN so that a read past the shard would change the answers. data is NULL for an empty
 * shard. Free shard->data. */
topk_shard take_shard(const void *whole, topk_dtype dtype, int64_t batch, int64_t global_vocab, layout l);

/* The process's MPI state. */
typedef struct kit {
    topk_comm comm;
    int rank, size;
    long checks, failures;
} kit;

/* MPI_Init and topk_comm_mpi(MPI_COMM_WORLD). */
void kit_start(kit *k, int *argc, char ***argv);

/* Counts one comparison; on a failure prints the rank, the case and the message. Returns ok. */
bool kit_check(kit *k, bool ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sums every rank's counts, prints the summary on rank 0, MPI_Finalize; the program's exit status. */
int kit_finish(kit *k, const char *program);

/* A context for a backend (cpu or reference); aborts the job if it cannot be made. */
topk_ctx *kit_context(topk_backend backend);

#endif
