/*
 * libtopk_mpi: topk_comm's ops over MPI (include/topk_mpi.h). A library of its own, so that libtopk never
 * depends on MPI: only programs that use MPI link this.
 *
 * The handle is the communicator's Fortran handle (MPI_Comm_c2f, an integer in every MPI), so the ops
 * need no memory of their own and topk_comm needs no freeing. Host buffers only: every op is complete on
 * return.
 */
#include <limits.h>
#include <stdint.h>

#include "topk_mpi.h"

static MPI_Comm comm_of(void *handle) { return MPI_Comm_f2c((MPI_Fint)(intptr_t)handle); }

static int allgather(void *handle, const void *send, void *recv, size_t bytes, void *stream)
{
    (void)stream;
    if (bytes > INT_MAX) return MPI_ERR_COUNT;
    return MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, comm_of(handle));
}

static int gather(void *handle, const void *send, void *recv, size_t bytes, int root, void *stream)
{
    (void)stream;
    if (bytes > INT_MAX) return MPI_ERR_COUNT;
    return MPI_Gather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, root, comm_of(handle));
}

static int allreduce_u64(void *handle, const uint64_t *send, uint64_t *recv, size_t count, topk_comm_reduce op,
                         void *stream)
{
    (void)stream;
    if (count > INT_MAX) return MPI_ERR_COUNT;
    return MPI_Allreduce(send, recv, (int)count, MPI_UINT64_T, op == TOPK_COMM_MAX ? MPI_MAX : MPI_SUM,
                         comm_of(handle));
}

topk_status topk_comm_mpi(MPI_Comm mpi_comm, topk_comm *comm)
{
    if (!comm) return TOPK_ERR_NULL_POINTER;
    int initialised = 0, rank = 0, size = 0;
    MPI_Initialized(&initialised);
    if (!initialised || MPI_Comm_rank(mpi_comm, &rank) != MPI_SUCCESS || MPI_Comm_size(mpi_comm, &size) != MPI_SUCCESS)
        return TOPK_ERR_COMM;
    *comm = (topk_comm){.handle = (void *)(intptr_t)MPI_Comm_c2f(mpi_comm), .rank = rank, .size = size,
                        .allgather = allgather, .gather = gather, .allreduce_u64 = allreduce_u64};
    return TOPK_OK;
}
