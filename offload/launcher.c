/*
 * The stream launcher (launcher.h): our kernels through the CUDA driver, on the caller's stream.
 *
 * The device image is the one libomptarget loads: clang's linker wrapper embeds the linked image of
 * every architecture in the library's `.llvm.offloading` section (OffloadBinary entries), which is
 * loaded with the library. We find that section through the library's own file (its section headers)
 * and take the entry of the device's architecture. Loading it with cuModuleLoadData gives a module of
 * our own in the device's primary context (libomptarget's, and PyTorch's), with the device runtime's
 * globals to set as libomptarget's plugin does (LLVM 19's ABI, which the build pins and the GPU test
 * of the two launchers guards; ../shared/gpu/NOTES.md, "Launching the kernels yourself"):
 *   - `__omp_rtl_device_environment`: device count and number, clock, hardware parallelism;
 *   - each kernel's `NAME_kernel_environment` says its execution mode (ours are generic-SPMD, launched
 *     as SPMD: one CUDA block per team, of the team's threads; read from the image here: mode 3, no
 *     reduction, no thread limit) and whether it reduces (ours never do: the first parameter, the launch
 *     environment, is then ~0);
 *   - then the region's captured variables in the kernel's order, each a 64-bit parameter.
 */
#define _GNU_SOURCE /* dladdr */

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_driver.h"
#include "launcher.h"
#include "topk_kernels.h"

enum { DEVICES_MOST = 16, PARAMS_MOST = 40 };
enum { PARAM_LAUNCH_ENVIRONMENT = -1, PARAM_TEAMS = -2, PARAM_THREADS = -3 };
/* OMPTgtExecModeFlags: clang makes our regions generic (a team-memory local precedes the parallel), and
 * OpenMPOpt turns them into generic-SPMD kernels, which launch like SPMD ones: a block of the team's threads. */
enum { EXEC_MODE_GENERIC = 1, EXEC_MODE_SPMD = 2, EXEC_MODE_GENERIC_SPMD = 3 };

typedef struct kernel_row {
    const char *function;
    int place;
    const char *name, *params;
} kernel_row;

#define TOPK_KERNEL_ROW_(function, place, name, params) {function, place, name, params},
static const kernel_row kernel_table[] = {TOPK_KERNELS(TOPK_KERNEL_ROW_)};
enum { KERNELS = sizeof kernel_table / sizeof kernel_table[0] };

typedef struct kernel {
    bool ready;
    CUfunction function;
    int params;
    int8_t order[PARAMS_MOST]; /* each parameter: an index into the launch site's args, or PARAM_* */
    int max_threads;
} kernel;

typedef struct device_module {
    bool tried;
    topk_status status;
    char error[256];
    CUcontext context;
    CUmodule module;
    kernel kernels[KERNELS];
} device_module;

static device_module modules[DEVICES_MOST];
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

/* The kernel's launch environment (LLVM 19 KernelEnvironmentTy's ConfigurationEnvironmentTy). */
typedef struct kernel_configuration {
    uint8_t use_generic_state_machine, may_use_nested_parallelism, exec_mode;
    int32_t min_threads, max_threads, min_teams, max_teams, reduction_data_size, reduction_buffer_length;
} kernel_configuration;

/* LLVM 19 DeviceEnvironmentTy. */
typedef struct device_environment {
    uint32_t debug_kind, num_devices, device_num, dynamic_memory_size;
    uint64_t clock_frequency, indirect_call_table, indirect_call_table_size, hardware_parallelism;
} device_environment;

static topk_status fail(char *error, size_t size, const char *message)
{
    snprintf(error, size, "%s", message);
    return TOPK_ERR_DEVICE_FAILURE;
}

static topk_status driver_fail(CUresult r, const char *what, char *error, size_t size)
{
    topk_cuda_message(r, what, error, size);
    return TOPK_ERR_DEVICE_FAILURE;
}

/* Where the library's `.llvm.offloading` section is in memory, from its file's section headers. */
static const char *offloading_section(size_t *size)
{
    Dl_info info;
    if (!dladdr((void *)&topk_launch, &info) || !info.dli_fname || !info.dli_fbase) return NULL;
    int fd = open(info.dli_fname, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    const char *found = NULL;
    Elf64_Ehdr elf;
    Elf64_Shdr *sections = NULL;
    char *names = NULL;
    if (pread(fd, &elf, sizeof elf, 0) != sizeof elf || memcmp(elf.e_ident, ELFMAG, SELFMAG) ||
        elf.e_ident[EI_CLASS] != ELFCLASS64 || elf.e_shentsize != sizeof(Elf64_Shdr) || elf.e_shstrndx >= elf.e_shnum)
        goto done;
    size_t table = (size_t)elf.e_shnum * sizeof(Elf64_Shdr);
    sections = malloc(table);
    if (!sections || pread(fd, sections, table, (off_t)elf.e_shoff) != (ssize_t)table) goto done;
    const Elf64_Shdr *strings = &sections[elf.e_shstrndx];
    names = malloc(strings->sh_size + 1);
    if (!names || pread(fd, names, strings->sh_size, (off_t)strings->sh_offset) != (ssize_t)strings->sh_size) goto done;
    names[strings->sh_size] = 0;
    for (int i = 0; i < elf.e_shnum; i++)
        if (sections[i].sh_name < strings->sh_size && !strcmp(names + sections[i].sh_name, ".llvm.offloading") &&
            (sections[i].sh_flags & SHF_ALLOC)) {
            found = (const char *)info.dli_fbase + sections[i].sh_addr;
            *size = sections[i].sh_size;
        }
done:
    free(names);
    free(sections);
    close(fd);
    return found;
}

static uint64_t read_u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The value of `key` in an OffloadBinary entry's string table, or "". */
static const char *entry_string(const char *binary, uint64_t table, uint64_t count, const char *key)
{
    for (uint64_t i = 0; i < count; i++) {
        const char *pair = binary + table + 16 * i;
        if (!strcmp(binary + read_u64(pair), key)) return binary + read_u64(pair + 8);
    }
    return "";
}

/* The device image for sm_<major><minor>: that architecture's, else the newest of the same major
 * version below it (a cubin runs on later minor versions). */
static const char *find_image(int major, int minor)
{
    size_t size = 0;
    const char *section = offloading_section(&size), *best = NULL;
    int best_minor = -1;
    for (size_t at = 0; section && at + 32 <= size;) {
        const char *binary = section + at;
        uint64_t total = read_u64(binary + 8), entry = read_u64(binary + 16);
        if (memcmp(binary, "\x10\xff\x10\xad", 4) || total < 32 || total > size - at) break;
        const char *e = binary + entry; /* kind u16, offload kind u16, flags u32, strings, count, image, size */
        const char *arch = entry_string(binary, read_u64(e + 8), read_u64(e + 16), "arch");
        int number;
        if (sscanf(arch, "sm_%d", &number) == 1 && number / 10 == major && number % 10 <= minor &&
            number % 10 > best_minor) {
            best = binary + read_u64(e + 24);
            best_minor = number % 10;
        }
        at += (total + 7) & ~(uint64_t)7;
    }
    return best;
}

topk_status topk_cuda_enter(topk_gpu *gpu, topk_cuda_scope *scope, bool relaxed)
{
    const topk_cuda_api *cu = topk_cuda();
    device_module *m = &modules[gpu->device];
    *scope = (topk_cuda_scope){0};
    CUcontext current = NULL;
    if (!cu || !m->context) return fail(gpu->error, sizeof gpu->error, "no CUDA driver or context");
    if (cu->cuCtxGetCurrent(&current) != 0 || current != m->context) {
        CUresult r = cu->cuCtxPushCurrent_v2(m->context);
        if (r) return driver_fail(r, "cuCtxPushCurrent", gpu->error, sizeof gpu->error);
        scope->pushed = true;
    }
    if (relaxed) {
        /* Inside a stream capture in the global mode, the thread may not allocate or copy: what the
         * scope does is not part of the graph, so say so for its duration. */
        scope->capture_mode = CU_STREAM_CAPTURE_MODE_RELAXED;
        scope->relaxed = cu->cuThreadExchangeStreamCaptureMode(&scope->capture_mode) == 0;
    }
    return TOPK_OK;
}

void topk_cuda_leave(topk_cuda_scope *scope)
{
    const topk_cuda_api *cu = topk_cuda();
    if (scope->relaxed) cu->cuThreadExchangeStreamCaptureMode(&scope->capture_mode);
    CUcontext popped;
    if (scope->pushed) cu->cuCtxPopCurrent_v2(&popped);
}

/* Loads the image into the device's primary context and sets the device environment. Modules lock held. */
static topk_status load_module(const topk_cuda_api *cu, topk_gpu *gpu, device_module *m)
{
    int ordinal = gpu->device;
    CUdevice device;
    CUresult r = cu->cuDeviceGet(&device, ordinal);
    if (!r) r = cu->cuDevicePrimaryCtxRetain(&m->context, device);
    if (r) return driver_fail(r, "cuDevicePrimaryCtxRetain", m->error, sizeof m->error);
    int major = topk_cuda_attribute(ordinal, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    int minor = topk_cuda_attribute(ordinal, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    const char *image = find_image(major, minor);
    if (!image) {
        snprintf(m->error, sizeof m->error, "libtopk has no device image for sm_%d%d in its .llvm.offloading section",
                 major, minor);
        return TOPK_ERR_DEVICE_FAILURE;
    }
    topk_cuda_scope scope;
    topk_status s = topk_cuda_enter(gpu, &scope, true);
    if (s != TOPK_OK) return fail(m->error, sizeof m->error, gpu->error);
    r = cu->cuModuleLoadData(&m->module, image);
    if (r) {
        topk_cuda_leave(&scope);
        return driver_fail(r, "cuModuleLoadData", m->error, sizeof m->error);
    }
    CUdeviceptr global;
    size_t bytes;
    device_environment env = {
        .num_devices = (uint32_t)omp_get_num_devices(),
        .device_num = (uint32_t)ordinal,
        .clock_frequency = (uint64_t)topk_cuda_attribute(ordinal, CU_DEVICE_ATTRIBUTE_CLOCK_RATE) * 1000,
        .hardware_parallelism = (uint64_t)gpu->sm_count *
                                (uint64_t)topk_cuda_attribute(ordinal, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR),
    };
    r = cu->cuModuleGetGlobal_v2(&global, &bytes, m->module, "__omp_rtl_device_environment");
    if (!r) r = cu->cuMemcpyHtoD_v2(global, &env, bytes < sizeof env ? bytes : sizeof env);
    topk_cuda_leave(&scope);
    if (r) return driver_fail(r, "__omp_rtl_device_environment", m->error, sizeof m->error);
    return TOPK_OK;
}

topk_status topk_launcher_open(topk_gpu *gpu)
{
    const topk_cuda_api *cu = topk_cuda();
    if (gpu->on_host || !cu) return TOPK_ERR_NO_DEVICE;
    if (gpu->device < 0 || gpu->device >= DEVICES_MOST) return fail(gpu->error, sizeof gpu->error, "device number too large for the launcher");
    device_module *m = &modules[gpu->device];
    pthread_mutex_lock(&modules_lock);
    if (!m->tried) {
        m->tried = true;
        m->status = load_module(cu, gpu, m);
    }
    pthread_mutex_unlock(&modules_lock);
    if (m->status != TOPK_OK) snprintf(gpu->error, sizeof gpu->error, "%s", m->error);
    return m->status;
}

/* Finds the kernel's function, checks its environment and orders the launch site's arguments by its
 * parameters. Modules lock held. */
static topk_status prepare(const topk_cuda_api *cu, topk_gpu *gpu, device_module *m, int which,
                           const topk_kernel_arg *args, int count)
{
    const kernel_row *row = &kernel_table[which];
    kernel *k = &m->kernels[which];
    char *error = gpu->error;
    size_t size = sizeof gpu->error;
    CUresult r = cu->cuModuleGetFunction(&k->function, m->module, row->name);
    if (r) return driver_fail(r, row->name, error, size);
    char name[256];
    snprintf(name, sizeof name, "%s_kernel_environment", row->name);
    CUdeviceptr global;
    size_t bytes;
    kernel_configuration config;
    r = cu->cuModuleGetGlobal_v2(&global, &bytes, m->module, name);
    if (!r) r = cu->cuMemcpyDtoH_v2(&config, global, sizeof config);
    if (r) return driver_fail(r, name, error, size);
    bool spmd = config.exec_mode == EXEC_MODE_SPMD || config.exec_mode == EXEC_MODE_GENERIC_SPMD;
    if (!spmd || config.reduction_data_size || config.reduction_buffer_length) {
        snprintf(error, size, "%s: execution mode %d, reduction %d bytes: the launcher runs (generic-)SPMD kernels "
                              "without reductions",
                 row->name, config.exec_mode, config.reduction_data_size);
        return TOPK_ERR_DEVICE_FAILURE;
    }
    k->max_threads = config.max_threads;
    k->params = 0;
    for (const char *p = row->params; *p;) {
        size_t length = strcspn(p, " ");
        int code = -100;
        if (length == 7 && !strncmp(p, "dyn_ptr", 7)) code = PARAM_LAUNCH_ENVIRONMENT;
        else if (length == 14 && !strncmp(p, ".capture_expr.", 14)) code = PARAM_TEAMS;    /* num_teams(...) */
        else if (length == 15 && !strncmp(p, ".capture_expr.1", 15)) code = PARAM_THREADS; /* thread_limit(...) */
        for (int a = 0; a < count && code == -100; a++)
            if (strlen(args[a].name) == length && !strncmp(p, args[a].name, length)) code = a;
        if (code == -100 || k->params == PARAMS_MOST) {
            snprintf(error, size, "%s: the launch site gives no argument '%.*s'", row->name, (int)length, p);
            return TOPK_ERR_DEVICE_FAILURE;
        }
        k->order[k->params++] = (int8_t)code;
        p += length + (p[length] == ' ');
    }
    __atomic_store_n(&k->ready, true, __ATOMIC_RELEASE); /* read without the lock by topk_launch */
    return TOPK_OK;
}

topk_status topk_launch(topk_gpu *gpu, const char *function, int place, int64_t teams, int64_t threads,
                        const topk_kernel_arg *args, int count)
{
    const topk_cuda_api *cu = topk_cuda();
    topk_status s = topk_launcher_open(gpu);
    if (s != TOPK_OK) return s;
    int which = 0;
    while (which < KERNELS && (kernel_table[which].place != place || strcmp(kernel_table[which].function, function)))
        which++;
    if (which == KERNELS) return fail(gpu->error, sizeof gpu->error, "no such region in the kernel table");
    device_module *m = &modules[gpu->device];
    kernel *k = &m->kernels[which];
    topk_cuda_scope scope;
    if (!__atomic_load_n(&k->ready, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&modules_lock);
        s = topk_cuda_enter(gpu, &scope, true);
        if (s == TOPK_OK) {
            if (!k->ready) s = prepare(cu, gpu, m, which, args, count);
            topk_cuda_leave(&scope);
        }
        pthread_mutex_unlock(&modules_lock);
        if (s != TOPK_OK) return s;
    }
    if (k->max_threads > 0 && threads > k->max_threads)
        return fail(gpu->error, sizeof gpu->error, "more threads than the kernel allows");
    uint64_t environment = ~(uint64_t)0, teams_value = (uint64_t)teams, threads_value = (uint64_t)threads;
    void *params[PARAMS_MOST];
    for (int i = 0; i < k->params; i++) {
        int code = k->order[i];
        params[i] = code >= 0 ? (void *)&args[code].value
                    : code == PARAM_TEAMS ? (void *)&teams_value
                    : code == PARAM_THREADS ? (void *)&threads_value
                                            : (void *)&environment;
    }
    s = topk_cuda_enter(gpu, &scope, false);
    if (s != TOPK_OK) return s;
    CUresult r = cu->cuLaunchKernel(k->function, (unsigned)teams, 1, 1, (unsigned)threads, 1, 1, 0,
                                    (CUstream)gpu->stream, params, NULL);
    topk_cuda_leave(&scope);
    return r ? driver_fail(r, "cuLaunchKernel", gpu->error, sizeof gpu->error) : TOPK_OK;
}
