/*
 * topk_mpi.h: libtopk's communicator ops (topk_comm, topk.h's "Vocab-sharded rows") over an MPI
 * communicator, from the optional library libtopk_mpi (built when CMake finds MPI; link it and an MPI).
 *
 *     topk_comm comm;
 *     if (topk_comm_mpi(MPI_COMM_WORLD, &comm) != TOPK_OK) ...;
 *     topk_shard shard = {my_logits, TOPK_BF16, batch, my_vocab, my_vocab, my_first_column, vocab};
 *     topk_status s = topk_shard_sample(ctx, &comm, &shard, &params, 0, TOPK_ALL_RANKS, tokens, probs);
 */
#ifndef TOPK_MPI_H
#define TOPK_MPI_H

#include <mpi.h>

#include "topk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills *comm with ops over mpi_comm (MPI_Allgather, MPI_Gather and MPI_Allreduce on MPI_UINT64_T; each
 * rank's block of bytes must stay below 2 GiB), with this process's rank and the communicator's size.
 * MPI must be initialised, and mpi_comm must stay valid while comm is used; comm needs no freeing.
 * Returns TOPK_OK, TOPK_ERR_NULL_POINTER, or TOPK_ERR_COMM when MPI is not initialised or refuses. */
TOPK_API topk_status topk_comm_mpi(MPI_Comm mpi_comm, topk_comm *comm);

#ifdef __cplusplus
}
#endif
#endif
