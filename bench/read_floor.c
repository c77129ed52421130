/*
 * The read floor: how fast this machine reads the bytes a selection must read, with the same threads.
 *
 * Any top-k reads every input byte at least once, so a vectorised sum over exactly those bytes (the first
 * vocab elements of each row, skipping the stride's padding) is a bar no selection can beat. Its median
 * time over a selection's median time (bw_fraction) says how close the selection comes to the machine.
 * Rows are cut into pieces so that one long row still keeps every thread busy.
 */
#include <omp.h>
#include <string.h>

#include "bench.h"

enum { PIECE_BYTES = 64 * 1024 };

typedef struct read_job {
    const char *data;
    int64_t batch, row_bytes, stride_bytes;
    int threads;
    uint64_t sum; /* kept, so the compiler cannot drop the reads */
} read_job;

static uint64_t sum_bytes(const char *bytes, int64_t count)
{
    uint64_t sum = 0;
    int64_t words = count / 8;
    for (int64_t w = 0; w < words; w++) {
        uint64_t word;
        memcpy(&word, bytes + w * 8, 8); /* rows of fp16 data need not be 8-byte aligned */
        sum += word;
    }
    for (int64_t b = words * 8; b < count; b++) sum += (unsigned char)bytes[b];
    return sum;
}

static void read_all(void *arg)
{
    read_job *job = arg;
    int64_t pieces_per_row = (job->row_bytes + PIECE_BYTES - 1) / PIECE_BYTES;
    uint64_t sum = 0;
#pragma omp parallel for num_threads(job->threads) schedule(static) reduction(+ : sum)
    for (int64_t piece = 0; piece < job->batch * pieces_per_row; piece++) {
        int64_t row = piece / pieces_per_row, offset = piece % pieces_per_row * PIECE_BYTES;
        int64_t length = job->row_bytes - offset < PIECE_BYTES ? job->row_bytes - offset : PIECE_BYTES;
        sum += sum_bytes(job->data + row * job->stride_bytes + offset, length);
    }
    job->sum += sum;
}

double read_floor_seconds(const void *data, int64_t batch, int64_t row_bytes, int64_t stride_bytes, int threads,
                          timing_policy policy)
{
    read_job job = {data, batch, row_bytes, stride_bytes, threads, 0};
    double median = time_calls(read_all, &job, policy).median_s;
    /* A use of the sum that the compiler cannot see through. */
    volatile uint64_t keep = job.sum;
    (void)keep;
    return median;
}
