/*
 * The few CUDA driver calls a caller of libtopk makes (a stream, device buffers, a graph), through dlopen
 * so that the programs build and run without CUDA: the stream tests (which skip there) and
 * topk-stream-bench.
 */
#ifndef TOPK_TEST_CUDA_H
#define TOPK_TEST_CUDA_H

#include <stdbool.h>
#include <stddef.h>

/* Called with the failed call's text and the driver's name for the error; defined by the program. */
void cuda_fail(const char *call, const char *error);

/* Loads the driver and makes device 0's primary context current on this thread; false without a GPU. */
bool cuda_open(void);

void *cuda_stream(void);                   /* a new non-blocking stream */
void cuda_stream_free(void *stream);
void cuda_sync(void *stream);              /* waits for the stream; asserts its work succeeded */
void *cuda_alloc(size_t bytes);            /* device memory */
void cuda_free(void *device);
void cuda_upload(void *device, const void *host, size_t bytes);   /* synchronous copies */
void cuda_download(void *host, const void *device, size_t bytes);
void cuda_upload_async(void *device, const void *host, size_t bytes, void *stream);

void cuda_capture_begin(void *stream);     /* global capture mode, as torch.cuda.graph's default */
void *cuda_capture_end(void *stream);      /* the instantiated graph */
void cuda_graph_launch(void *graph, void *stream);
void cuda_graph_free(void *graph);

#endif
