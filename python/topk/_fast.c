/* topk._fast: the common call of topk.topk() in one C function, to cut the binding's own cost per call.
 *
 * init() returns topk.topk itself (topk_entry): a C function with the Python function's arguments that runs
 * fast_topk and hands every call it does not serve to the Python function (select._python_topk), so that
 * the common call makes no Python frame at all.
 * fast_topk(x, k, dim, largest, backend, out) serves a 2-D NumPy array or PyTorch tensor (CPU or CUDA)
 * whose rows libtopk reads in place, with dim=-1 and out= absent or right: it reads the array's attributes the
 * way topk/_arrays.py does (shape, dtype, is_cuda/is_cpu, get_device(), stride(), data_ptr(), or NumPy's
 * buffer), allocates the outputs with the allocators that module uses, and calls topk_select through the
 * pointer ctypes found in the loaded libtopk; on CUDA data it takes topk/_cuda.py's steps (call()) first:
 * torch's current stream made the context's stream unless it already is, then the call, enqueued there,
 * under that module's lock, with no host wait. It links neither libtopk nor libcuda and makes no decision
 * of its own: every dtype, allocator, context, stream and function comes from the Python package (init()).
 *
 * Anything it is not sure of (another type, dtype, layout, a k that is not a plain int in range, an out=
 * that is not exactly right, a context not made yet, a stream handle that is not an int, any error while
 * looking) returns None before the library is called, and topk() then takes the Python path, which gives
 * the usual result or exception. Only these raise here, exactly as the Python path would: an exception of
 * topk._cuda.raw_stream or of its lock, and a non-zero status of topk_ctx_set_stream or topk_select
 * (through topk._library.raise_for, with topk_ctx_last_error's message after DEVICE_FAILURE).
 * Plain C17 and the Python C API (3.9+); no NumPy or torch headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "topk.h" /* the flags and topk_select's type; the library itself is reached through ctypes' pointer */

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#endif

typedef __typeof__(&topk_select) select_fn;
typedef __typeof__(&topk_ctx_set_stream) set_stream_fn;
typedef __typeof__(&topk_ctx_last_error) last_error_fn;

enum { MAX_KINDS = 8, MAX_DTYPES = 4 };
#define CU_STREAM_LEGACY ((void *)1) /* for torch's default stream (handle 0): NULL is "synchronous" to libtopk */

/* What init() hands over, kept for the life of the process. */
static select_fn select_call;         /* topk_select in the libtopk that ctypes loaded */
static set_stream_fn set_stream_call; /* topk_ctx_set_stream, or NULL: CUDA data is then left to Python */
static last_error_fn last_error_call; /* topk_ctx_last_error */
static PyObject *topk_type;     /* topk.TopK */
static PyObject *contexts;      /* topk._backends._contexts: (backend, cuda device or None) -> context */
static PyObject *raise_for;     /* topk._library.raise_for(status, detail) */
static PyObject *describe_kind; /* topk._arrays.fast_kind(type): the kind of that type as a tuple, or None */
static PyObject *cuda_module;   /* topk._cuda, whose `raw_stream` is looked up on each call (tests replace it) */
static PyObject *streams;       /* topk._cuda.streams: context -> the stream last set on it */
static PyObject *lock_acquire, *lock_release; /* topk._cuda.lock's methods */
static PyObject *python_topk;   /* topk.select._python_topk: the calls that fast_topk does not serve */
static PyObject *minus_one, *legacy_stream;

static PyObject *s_shape, *s_dtype, *s_is_cuda, *s_is_cpu, *s_get_device, *s_stride, *s_data_ptr, *s_is_contiguous,
    *s_raw_stream, *s_streams, *s_lock, *s_acquire, *s_release, *s_dim, *s_largest, *s_backend, *s_out, *s_copy;

/* One array library (topk._arrays' _NumpyKind or _TorchKind) as seen from one exact type. */
typedef struct {
    PyTypeObject *type;
    PyObject *kind; /* the kind object: out= arrays must be of the input's kind */
    int torch;
    int ndtypes;
    PyObject *dtypes[MAX_DTYPES]; /* compared by identity: anything else takes the Python path */
    int codes[MAX_DTYPES];
    PyObject *int64;
    PyObject *empty_pair; /* kind.empty_pair(shape, strides, dtype, cuda) -> (values, indices, ptr, ptr) */
    PyObject *empty_host; /* NumPy: np.empty(shape, dtype); torch: _empty_strided_cpu(shape, strides, dtype) */
    PyObject *empty_cuda; /* torch: _empty_strided_cuda(shape, strides, dtype), current device only */
    PyObject *current_device;
} kind_info;

static kind_info kinds[MAX_KINDS];
static int nkinds;

static PyObject *none_or(PyObject *o) { return o == Py_None ? NULL : o; }

/* The kind_info of an exact type, asking topk._arrays the first time; NULL when the type is not one that
 * topk() has met yet (the Python path then registers it) or on any error. */
static kind_info *kind_of(PyTypeObject *type)
{
    for (int i = 0; i < nkinds; i++)
        if (kinds[i].type == type)
            return &kinds[i];
    if (nkinds == MAX_KINDS)
        return NULL;
    PyObject *d = PyObject_CallOneArg(describe_kind, (PyObject *)type);
    if (d == NULL) {
        PyErr_Clear();
        return NULL;
    }
    kind_info k = {0};
    PyObject *dtypes;
    if (d == Py_None || !PyArg_ParseTuple(d, "OpOOOOOO", &k.kind, &k.torch, &dtypes, &k.int64, &k.empty_pair,
                                          &k.empty_host, &k.empty_cuda, &k.current_device) ||
        !PyTuple_Check(dtypes) || PyTuple_GET_SIZE(dtypes) > MAX_DTYPES) {
        PyErr_Clear();
        Py_DECREF(d);
        return NULL;
    }
    k.ndtypes = (int)PyTuple_GET_SIZE(dtypes);
    for (int i = 0; i < k.ndtypes; i++) {
        PyObject *pair = PyTuple_GET_ITEM(dtypes, i);
        if (!PyArg_ParseTuple(pair, "Oi", &k.dtypes[i], &k.codes[i])) {
            PyErr_Clear();
            Py_DECREF(d);
            return NULL;
        }
        Py_INCREF(k.dtypes[i]);
    }
    k.type = type;
    k.empty_host = none_or(k.empty_host);
    k.empty_cuda = none_or(k.empty_cuda);
    k.current_device = none_or(k.current_device);
    Py_INCREF(type);
    Py_INCREF(k.kind);
    Py_INCREF(k.int64);
    Py_INCREF(k.empty_pair);
    Py_XINCREF(k.empty_host);
    Py_XINCREF(k.empty_cuda);
    Py_XINCREF(k.current_device);
    Py_DECREF(d);
    kinds[nkinds] = k;
    return &kinds[nkinds++];
}

/* The input as libtopk rows. cuda: a new reference to the device index (an int), or NULL for host data. */
typedef struct {
    int code;
    PyObject *dtype; /* borrowed from its kind_info */
    PyObject *cuda;
    int64_t rows, vocab, stride;
    void *ptr;
} rows2d;

/* Whether v (a new reference, or NULL after an error) is True; consumes v, clears the error. */
static int take_is_true(PyObject *v)
{
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(v);
    return v == Py_True;
}

static int attr_is_true(PyObject *o, PyObject *name) { return take_is_true(PyObject_GetAttr(o, name)); }

static PyObject *method0(PyObject *o, PyObject *name)
{
    PyObject *args[1] = {o};
    return PyObject_VectorcallMethod(name, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static int method_is_true(PyObject *o, PyObject *name) { return take_is_true(method0(o, name)); }

/* The int value of a new reference, which is released; 0 on success. */
static int take_int64(PyObject *o, int64_t *out)
{
    int overflow = 0;
    if (o == NULL)
        return -1;
    long long v = PyLong_Check(o) ? PyLong_AsLongLongAndOverflow(o, &overflow) : -1;
    int bad = !PyLong_Check(o) || overflow || (v == -1 && PyErr_Occurred());
    Py_DECREF(o);
    if (bad) {
        PyErr_Clear();
        return -1;
    }
    *out = v;
    return 0;
}

static int take_pointer(PyObject *o, void **out)
{
    if (o == NULL)
        return -1;
    void *p = PyLong_Check(o) ? PyLong_AsVoidPtr(o) : NULL;
    int bad = !PyLong_Check(o) || PyErr_Occurred();
    Py_DECREF(o);
    if (bad) {
        PyErr_Clear();
        return -1;
    }
    *out = p;
    return 0;
}

/* A (two ints) tuple, or torch.Size, of a new reference, which is released. */
static int take_pair(PyObject *o, int64_t *a, int64_t *b)
{
    if (o == NULL || !PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2) {
        Py_XDECREF(o);
        PyErr_Clear();
        return -1;
    }
    PyObject *first = PyTuple_GET_ITEM(o, 0), *second = PyTuple_GET_ITEM(o, 1);
    Py_INCREF(first);
    Py_INCREF(second);
    Py_DECREF(o);
    int bad = take_int64(first, a);
    return take_int64(second, b) | bad;
}

static int dtype_code(const kind_info *kind, PyObject *dtype)
{
    for (int i = 0; i < kind->ndtypes; i++)
        if (kind->dtypes[i] == dtype)
            return i;
    return -1;
}

/* The index of x's dtype among the kind's, or -1 (also when x has no dtype). */
static int dtype_index(const kind_info *kind, PyObject *x)
{
    PyObject *dtype = PyObject_GetAttr(x, s_dtype);
    if (dtype == NULL) {
        PyErr_Clear();
        return -1;
    }
    int i = dtype_code(kind, dtype);
    Py_DECREF(dtype);
    return i;
}

/* _TorchKind.rows2d: 1 when described, 0 when the Python path should look at it. */
static int torch_rows2d(const kind_info *kind, PyObject *x, rows2d *m)
{
    int64_t unit;
    if (take_pair(PyObject_GetAttr(x, s_shape), &m->rows, &m->vocab))
        return 0;
    if (attr_is_true(x, s_is_cuda)) {
        m->cuda = method0(x, s_get_device);
        if (m->cuda == NULL || !PyLong_CheckExact(m->cuda)) {
            PyErr_Clear();
            return 0;
        }
    } else if (!attr_is_true(x, s_is_cpu)) {
        return 0;
    }
    int i = dtype_index(kind, x);
    if (i < 0 || take_pair(method0(x, s_stride), &m->stride, &unit))
        return 0;
    if (!((unit == 1 || m->vocab <= 1) && (m->stride >= m->vocab || m->rows <= 1)))
        return 0;
    if (m->rows <= 1)
        m->stride = m->vocab;
    m->code = kind->codes[i];
    m->dtype = kind->dtypes[i];
    return take_pointer(method0(x, s_data_ptr), &m->ptr) == 0;
}

/* A NumPy array's 2-D layout through the buffer protocol (no NumPy headers); 0 on success. */
static int numpy_view(PyObject *a, int flags, Py_buffer *view)
{
    if (PyObject_GetBuffer(a, view, flags | PyBUF_STRIDES)) {
        PyErr_Clear();
        return -1;
    }
    if (view->ndim != 2) {
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* _NumpyKind.rows2d. */
static int numpy_rows2d(const kind_info *kind, PyObject *x, rows2d *m)
{
    int i = dtype_index(kind, x);
    Py_buffer view;
    if (i < 0 || numpy_view(x, PyBUF_SIMPLE, &view))
        return 0;
    int64_t size = view.itemsize, rows = view.shape[0], vocab = view.shape[1];
    int64_t row = view.strides[0], unit = view.strides[1];
    void *ptr = view.buf;
    PyBuffer_Release(&view); /* x holds the memory for the whole call */
    /* The buffer gives a contiguous array its canonical strides; they can differ from a.strides, which the
     * Python path reads, only where the array is empty (NumPy gives those zero strides): left to Python. */
    if (rows == 0 || vocab == 0)
        return 0;
    if (!((unit == size || vocab <= 1) && (row >= vocab * size || rows <= 1) && row % size == 0))
        return 0;
    m->code = kind->codes[i];
    m->dtype = kind->dtypes[i];
    m->rows = rows;
    m->vocab = vocab;
    m->stride = rows > 1 ? row / size : vocab;
    m->ptr = ptr;
    return 1;
}

/* _TorchKind.out_pointers for one output: 1 with its pointer when it is dense, of this shape and dtype, on
 * the input's device. */
static int torch_out(PyObject *out, PyObject *dtype, PyObject *cuda, int64_t rows, int64_t k, void **ptr)
{
    int64_t a, b;
    if (cuda == NULL) {
        if (!attr_is_true(out, s_is_cpu))
            return 0;
    } else {
        if (!attr_is_true(out, s_is_cuda))
            return 0;
        PyObject *device = method0(out, s_get_device);
        int same = device != NULL && PyObject_RichCompareBool(device, cuda, Py_EQ) == 1;
        Py_XDECREF(device);
        PyErr_Clear();
        if (!same)
            return 0;
    }
    PyObject *d = PyObject_GetAttr(out, s_dtype);
    Py_XDECREF(d);
    if (d != dtype) {
        PyErr_Clear();
        return 0;
    }
    if (take_pair(PyObject_GetAttr(out, s_shape), &a, &b) || a != rows || b != k)
        return 0;
    if (!method_is_true(out, s_is_contiguous))
        return 0;
    return take_pointer(method0(out, s_data_ptr), ptr) == 0;
}

/* _NumpyKind.out_pointer for one output: dense (C-contiguous), writable, of this shape and dtype. */
static int numpy_out(PyObject *out, PyObject *dtype, int64_t rows, int64_t k, void **ptr)
{
    PyObject *d = PyObject_GetAttr(out, s_dtype);
    Py_XDECREF(d);
    Py_buffer view;
    if (d != dtype || numpy_view(out, PyBUF_WRITABLE, &view)) {
        PyErr_Clear();
        return 0;
    }
    int64_t size = view.itemsize;
    int ok = view.shape[0] == rows && view.shape[1] == k &&
             (rows == 0 || k == 0 ||
              ((k == 1 || view.strides[1] == size) && (rows == 1 || view.strides[0] == k * size)));
    *ptr = view.buf;
    PyBuffer_Release(&view);
    return ok;
}

static int out_ok(const kind_info *kind, PyObject *out, PyObject *dtype, const rows2d *m, int64_t k, void **ptr)
{
    const kind_info *its = kind_of(Py_TYPE(out));
    if (its == NULL || its->kind != kind->kind)
        return 0;
    return kind->torch ? torch_out(out, dtype, m->cuda, m->rows, k, ptr) : numpy_out(out, dtype, m->rows, k, ptr);
}

/* A new output's data pointer (it is dense and writable); 0 on success. */
static int output_pointer(const kind_info *kind, PyObject *out, void **ptr)
{
    if (kind->torch)
        return take_pointer(method0(out, s_data_ptr), ptr);
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE)) {
        PyErr_Clear();
        return -1;
    }
    *ptr = view.buf;
    PyBuffer_Release(&view);
    return 0;
}

/* kind.empty_pair: (values, indices) of shape (rows, k), of the input's dtype and int64, on its device, with
 * the allocator the Python path would use; 0 on success (new references), -1 to take the Python path. */
static int allocate(const kind_info *kind, const rows2d *m, int64_t k, PyObject **values, PyObject **indices)
{
    PyObject *shape = Py_BuildValue("(LL)", (long long)m->rows, (long long)k);
    PyObject *strides = Py_BuildValue("(Li)", (long long)(k ? k : 1), 1);
    PyObject *empty = NULL, *pair = NULL;
    int status = -1;
    *values = *indices = NULL;
    if (shape == NULL || strides == NULL)
        goto done;
    if (m->cuda == NULL) {
        empty = kind->empty_host;
    } else if (kind->empty_cuda != NULL && kind->current_device != NULL) {
        PyObject *current = PyObject_CallNoArgs(kind->current_device);
        if (current != NULL && PyObject_RichCompareBool(current, m->cuda, Py_EQ) == 1)
            empty = kind->empty_cuda;
        Py_XDECREF(current);
        PyErr_Clear();
    }
    if (empty != NULL && kind->torch) {
        PyObject *args[3] = {shape, strides, m->dtype};
        *values = PyObject_Vectorcall(empty, args, 3, NULL);
        args[2] = kind->int64;
        *indices = *values ? PyObject_Vectorcall(empty, args, 3, NULL) : NULL;
    } else if (empty != NULL) {
        PyObject *args[2] = {shape, m->dtype};
        *values = PyObject_Vectorcall(empty, args, 2, NULL);
        args[1] = kind->int64;
        *indices = *values ? PyObject_Vectorcall(empty, args, 2, NULL) : NULL;
    } else {
        PyObject *args[4] = {shape, strides, m->dtype, m->cuda ? m->cuda : Py_None};
        pair = PyObject_Vectorcall(kind->empty_pair, args, 4, NULL);
        if (pair != NULL && PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 4) {
            *values = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
            *indices = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
        }
    }
    status = *values != NULL && *indices != NULL ? 0 : -1;
done:
    if (status) {
        Py_CLEAR(*values);
        Py_CLEAR(*indices);
        PyErr_Clear();
    }
    Py_XDECREF(pair);
    Py_XDECREF(shape);
    Py_XDECREF(strides);
    return status;
}

/* torch's current stream of the device (topk._cuda.raw_stream) as libtopk takes it: *stream, with
 * CU_STREAM_LEGACY for torch's 0, and *handle a new reference to the int that stands for it in
 * topk._cuda.streams. 1 when found; 0 for a handle that is not an int (the Python path takes the call);
 * -1 with raw_stream's exception. */
static int current_stream(PyObject *cuda, void **stream, PyObject **handle)
{
    PyObject *raw = PyObject_GetAttr(cuda_module, s_raw_stream);
    PyObject *h = raw != NULL ? PyObject_CallOneArg(raw, cuda) : NULL;
    Py_XDECREF(raw);
    if (h == NULL)
        return -1;
    void *p = PyLong_CheckExact(h) ? PyLong_AsVoidPtr(h) : NULL;
    if (!PyLong_CheckExact(h) || PyErr_Occurred()) {
        PyErr_Clear();
        Py_DECREF(h);
        return 0;
    }
    if (p == NULL) {
        Py_SETREF(h, Py_NewRef(legacy_stream));
        p = CU_STREAM_LEGACY;
    }
    *stream = p;
    *handle = h;
    return 1;
}

/* topk._cuda.call(device, topk_select, ctx, ...) step for step, from the lock on (ctx_key: the context's
 * int, the key of topk._cuda.streams): the status, with *detail the driver's message after
 * DEVICE_FAILURE (a new reference) or NULL; -1 with the lock's exception. */
static int select_on_stream(PyObject *ctx_key, void *ctx, void *stream, PyObject *handle, const rows2d *m, int64_t k,
                            unsigned flags, void *values_ptr, void *indices_ptr, PyObject **detail)
{
    PyObject *acquired = PyObject_CallNoArgs(lock_acquire);
    if (acquired == NULL)
        return -1;
    Py_DECREF(acquired);
    PyObject *last = PyDict_GetItemWithError(streams, ctx_key);
    int same = last != NULL && PyObject_RichCompareBool(last, handle, Py_EQ) == 1;
    int status = TOPK_OK, set_status = TOPK_OK;
    const char *message = NULL;
    PyErr_Clear();
    Py_BEGIN_ALLOW_THREADS
    if (!same) {
        status = set_status = (int)set_stream_call(ctx, stream);
        if (status == TOPK_ERR_NO_DEVICE) /* a host backend: its call refuses device pointers, and says so */
            status = TOPK_OK;
    }
    if (status == TOPK_OK)
        status = (int)select_call(ctx, m->ptr, (topk_dtype)m->code, m->rows, m->vocab, m->stride, k, flags,
                                  values_ptr, indices_ptr);
    if (status == TOPK_ERR_DEVICE_FAILURE) /* valid until the next call on the context: read under the lock */
        message = last_error_call(ctx);
    Py_END_ALLOW_THREADS
    if (!same && set_status == TOPK_OK && PyDict_SetItem(streams, ctx_key, handle))
        PyErr_Clear(); /* not remembered: the next call sets it again */
    *detail = message != NULL ? PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace") : NULL;
    PyErr_Clear();
    PyObject *released = PyObject_CallNoArgs(lock_release);
    if (released == NULL) {
        Py_CLEAR(*detail);
        return -1;
    }
    Py_DECREF(released);
    return status;
}

/* Raises topk._library.raise_for(status, detail) (detail: NULL for None). */
static void raise_status(int status, PyObject *detail)
{
    PyObject *status_obj = PyLong_FromLong(status);
    if (status_obj != NULL) {
        PyObject *args[2] = {status_obj, detail != NULL ? detail : Py_None};
        Py_XDECREF(PyObject_Vectorcall(raise_for, args, 2, NULL)); /* raises */
        Py_DECREF(status_obj);
    }
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "topk: raise_for did not raise");
}

static int exact_int(PyObject *o, int64_t *value)
{
    return PyLong_CheckExact(o) && take_int64(Py_NewRef(o), value) == 0;
}

/* topk(x, k, dim, largest, backend, out): TopK(values, indices), or None for the Python path. */
static PyObject *fast_topk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    PyObject *values = NULL, *indices = NULL, *result = NULL, *ctx_key = NULL;
    rows2d m = {0};
    int64_t k, dim;
    void *ctx = NULL, *values_ptr = NULL, *indices_ptr = NULL;
    if (nargs != 6 || select_call == NULL)
        Py_RETURN_NONE;
    PyObject *x = args[0], *largest = args[3], *backend = args[4], *out = args[5];
    if (!exact_int(args[2], &dim) || dim != -1 || !exact_int(args[1], &k) ||
        (largest != Py_True && largest != Py_False))
        Py_RETURN_NONE;
    const kind_info *kind = kind_of(Py_TYPE(x));
    if (kind == NULL || !(kind->torch ? torch_rows2d(kind, x, &m) : numpy_rows2d(kind, x, &m)) || k < 0 ||
        k > m.vocab || (m.cuda != NULL && set_stream_call == NULL))
        goto python;
    int call = m.rows > 0 && k > 0;
    if (out != Py_None) {
        if (!(PyTuple_CheckExact(out) || PyList_CheckExact(out)) || PySequence_Fast_GET_SIZE(out) != 2)
            goto python;
        values = Py_NewRef(PySequence_Fast_GET_ITEM(out, 0));
        indices = Py_NewRef(PySequence_Fast_GET_ITEM(out, 1));
        if (!out_ok(kind, values, m.dtype, &m, k, &values_ptr) ||
            !out_ok(kind, indices, kind->int64, &m, k, &indices_ptr))
            goto python;
    }
    if (call) { /* the context is made by the Python path, the first time */
        PyObject *key = PyTuple_Pack(2, backend, m.cuda ? m.cuda : Py_None);
        PyObject *found = key ? PyDict_GetItemWithError(contexts, key) : NULL;
        Py_XDECREF(key);
        if (found == NULL || take_pointer(Py_NewRef(found), &ctx))
            goto python;
        ctx_key = Py_NewRef(found);
    }
    if (out == Py_None) {
        if (allocate(kind, &m, k, &values, &indices))
            goto python;
        if (call && (output_pointer(kind, values, &values_ptr) || output_pointer(kind, indices, &indices_ptr)))
            goto python;
    }
    if (call) {
        unsigned flags = largest == Py_True ? 0 : TOPK_SMALLEST;
        PyObject *detail = NULL;
        int status;
        if (m.cuda == NULL) {
            Py_BEGIN_ALLOW_THREADS
            status = (int)select_call(ctx, m.ptr, (topk_dtype)m.code, m.rows, m.vocab, m.stride, k, flags,
                                      values_ptr, indices_ptr);
            Py_END_ALLOW_THREADS
        } else { /* enqueued on torch's current stream, as topk._cuda.call does */
            void *stream;
            PyObject *handle;
            int have = current_stream(m.cuda, &stream, &handle);
            if (have == 0)
                goto python;
            if (have < 0)
                goto done;
            status = select_on_stream(ctx_key, ctx, stream, handle, &m, k, flags | TOPK_DEVICE_POINTERS, values_ptr,
                                      indices_ptr, &detail);
            Py_DECREF(handle);
            if (status < 0)
                goto done;
        }
        if (status) {
            raise_status(status, detail);
            Py_XDECREF(detail);
            goto done;
        }
    }
    PyObject *pair = PyTuple_Pack(2, values, indices);
    PyObject *new_args = pair ? PyTuple_Pack(1, pair) : NULL;
    result = new_args ? PyTuple_Type.tp_new((PyTypeObject *)topk_type, new_args, NULL) : NULL;
    Py_XDECREF(new_args);
    Py_XDECREF(pair);
    goto done;
python:
    PyErr_Clear();
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(values);
    Py_XDECREF(indices);
    Py_XDECREF(m.cuda);
    Py_XDECREF(ctx_key);
    return result;
}

/* Which of topk()'s optional arguments a keyword names: 2 dim, 3 largest, 4 backend, 5 out, 6 copy; -1 for
 * any other (x and k too: such calls are left to the Python function). */
static int keyword_slot(PyObject *name)
{
    PyObject *const known[] = {s_dim, s_largest, s_backend, s_out, s_copy};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 5; i++)
            if (pass == 0 ? name == known[i] : PyUnicode_Compare(name, known[i]) == 0)
                return i + 2;
    PyErr_Clear();
    return -1;
}

/* topk.topk itself while topk._fast is in use (init() makes it): the Python function's arguments and
 * defaults, without its frame. A call that fast_topk does not serve goes to the Python function as it
 * came, which gives the usual result or exception (a TypeError for a wrong call too). copy is accepted and
 * ignored: fast_topk only serves inputs it reads in place, where copy changes nothing. */
static PyObject *topk_entry(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    (void)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *a[7] = {NULL, NULL, minus_one, Py_True, Py_None, Py_None, Py_False};
    unsigned given = 0;
    if (nargs < 2 || nargs > 5)
        goto python;
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    for (Py_ssize_t j = 0; j < nkw; j++) {
        int slot = keyword_slot(PyTuple_GET_ITEM(kwnames, j));
        if (slot < nargs || (given >> slot & 1)) /* unknown, or given twice */
            goto python;
        given |= 1u << slot;
        a[slot] = args[nargs + j];
    }
    PyObject *result = fast_topk(NULL, a, 6);
    if (result != Py_None)
        return result; /* the result, or NULL with the exception set */
    Py_DECREF(result);
python:
    return PyObject_Vectorcall(python_topk, args, nargsf, kwnames);
}

static PyMethodDef topk_entry_def = {"topk", (PyCFunction)(void (*)(void))topk_entry, METH_FASTCALL | METH_KEYWORDS,
                                     NULL};

/* The entry's __doc__: a signature line for inspect, then the Python function's own docstring. Made once:
 * every function made from topk_entry_def points at it. */
static int set_entry_doc(PyObject *function)
{
    static const char signature[] = "topk(x, k, dim=-1, largest=True, backend=None, *, out=None, copy=False)\n--\n\n";
    if (topk_entry_def.ml_doc != NULL)
        return 0;
    PyObject *doc = PyObject_GetAttrString(function, "__doc__");
    const char *text = doc != NULL && PyUnicode_Check(doc) ? PyUnicode_AsUTF8(doc) : "";
    char *whole = text != NULL ? PyMem_RawMalloc(sizeof signature + strlen(text)) : NULL;
    if (whole != NULL) {
        memcpy(whole, signature, sizeof signature - 1);
        strcpy(whole + sizeof signature - 1, text);
        topk_entry_def.ml_doc = whole;
    }
    Py_XDECREF(doc);
    PyErr_Clear();
    return 0;
}

/* init(the addresses of topk_select, topk_ctx_set_stream and topk_ctx_last_error (0: absent), TopK,
 * _backends._contexts, _library.raise_for, _arrays.fast_kind, topk._cuda, select._python_topk): the entry, a
 * new topk function (topk_entry). */
static PyObject *fast_init(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long address, set_stream_address, last_error_address;
    PyObject *type, *ctxs, *raiser, *describer, *cuda, *python;
    if (!PyArg_ParseTuple(args, "KKKO!O!OOOO:init", &address, &set_stream_address, &last_error_address, &PyType_Type,
                          &type, &PyDict_Type, &ctxs, &raiser, &describer, &cuda, &python))
        return NULL;
    if (address == 0 || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_ValueError, "topk._fast.init: no topk_select, or TopK is not a tuple type");
        return NULL;
    }
    PyObject *memo = PyObject_GetAttr(cuda, s_streams), *lock = PyObject_GetAttr(cuda, s_lock);
    PyObject *acquire = lock != NULL ? PyObject_GetAttr(lock, s_acquire) : NULL;
    PyObject *release = lock != NULL ? PyObject_GetAttr(lock, s_release) : NULL;
    Py_XDECREF(lock);
    if (memo == NULL || !PyDict_Check(memo) || acquire == NULL || release == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "topk._fast.init: topk._cuda.streams must be a dict");
        Py_XDECREF(memo);
        Py_XDECREF(acquire);
        Py_XDECREF(release);
        return NULL;
    }
    Py_XSETREF(streams, memo);
    Py_XSETREF(lock_acquire, acquire);
    Py_XSETREF(lock_release, release);
    Py_XSETREF(topk_type, Py_NewRef(type));
    Py_XSETREF(contexts, Py_NewRef(ctxs));
    Py_XSETREF(raise_for, Py_NewRef(raiser));
    Py_XSETREF(describe_kind, Py_NewRef(describer));
    Py_XSETREF(cuda_module, Py_NewRef(cuda));
    Py_XSETREF(python_topk, Py_NewRef(python));
    select_call = (select_fn)(uintptr_t)address;
    set_stream_call = set_stream_address && last_error_address ? (set_stream_fn)(uintptr_t)set_stream_address : NULL;
    last_error_call = (last_error_fn)(uintptr_t)last_error_address;
    set_entry_doc(python);
    PyObject *module_name = PyUnicode_FromString("topk");
    PyObject *entry = module_name ? PyCFunction_NewEx(&topk_entry_def, NULL, module_name) : NULL;
    Py_XDECREF(module_name);
    return entry;
}

static PyMethodDef methods[] = {
    {"topk", (PyCFunction)(void (*)(void))fast_topk, METH_FASTCALL,
     "topk(x, k, dim, largest, backend, out): topk.topk's common call, or None for the Python path"},
    {"init", fast_init, METH_VARARGS,
     "init(select_address, set_stream_address, last_error_address, TopK, contexts, raise_for, fast_kind, cuda_module, "
     "python_topk) -> topk.topk's entry"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "topk._fast", "topk.topk()'s common call in C", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fast(void)
{
    struct {
        PyObject **name;
        const char *text;
    } names[] = {{&s_shape, "shape"}, {&s_dtype, "dtype"}, {&s_is_cuda, "is_cuda"}, {&s_is_cpu, "is_cpu"},
                 {&s_get_device, "get_device"}, {&s_stride, "stride"}, {&s_data_ptr, "data_ptr"},
                 {&s_is_contiguous, "is_contiguous"}, {&s_raw_stream, "raw_stream"},
                 {&s_streams, "streams"}, {&s_lock, "lock"}, {&s_acquire, "acquire"}, {&s_release, "release"},
                 {&s_dim, "dim"}, {&s_largest, "largest"}, {&s_backend, "backend"}, {&s_out, "out"},
                 {&s_copy, "copy"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (*names[i].name == NULL && (*names[i].name = PyUnicode_InternFromString(names[i].text)) == NULL)
            return NULL;
    if (minus_one == NULL && (minus_one = PyLong_FromLong(-1)) == NULL)
        return NULL;
    if (legacy_stream == NULL && (legacy_stream = PyLong_FromVoidPtr(CU_STREAM_LEGACY)) == NULL)
        return NULL;
    return PyModule_Create(&module);
}
