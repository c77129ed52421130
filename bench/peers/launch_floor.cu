// The launch floor our offload backend is judged against: an empty CUDA kernel, launched and
// synchronised back to back, as the raw CUDA runtime does it. Built and run on the GPU host by
// ci/gpu-check (nvcc is there). Prints the median microseconds of launch + cudaStreamSynchronize.
#include <cstdio>
#include <algorithm>
#include <chrono>
#include <vector>

__global__ void empty_kernel() {}

int main()
{
    cudaStream_t stream;
    if (cudaStreamCreate(&stream) != cudaSuccess) return 1;
    for (int i = 0; i < 100; i++) empty_kernel<<<1, 32, 0, stream>>>();
    cudaStreamSynchronize(stream);
    std::vector<double> us;
    for (int i = 0; i < 2000; i++) {
        auto t0 = std::chrono::steady_clock::now();
        empty_kernel<<<1, 32, 0, stream>>>();
        cudaStreamSynchronize(stream);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    if (cudaGetLastError() != cudaSuccess) return 1;
    std::sort(us.begin(), us.end());
    printf("raw CUDA empty kernel, launch + cudaStreamSynchronize: median %.2f us, min %.2f us (2000 calls)\n",
           us[us.size() / 2], us[0]);
    return 0;
}
