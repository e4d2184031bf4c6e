/* Compact hash tables of 16-byte digests, for the main process's dedup (corpusprov.stages.keys).
 *
 * The pure-Python DigestSet and DigestTable in keys.py are the reference: these types keep
 * their behaviour and their memory (16 bytes a key, plus 8 for a table's value), and only
 * take the per-row probe loop out of the interpreter (about 2.5 us a row in Python, where
 * the main process of a merge does two per row). Property tests compare the two.
 *
 * DigestSet: 256 open-addressing shards chosen by the digest's first byte, each kept
 * between 35% and 70% full, so growing one shard never holds two copies of the whole set.
 * An all-zero slot is empty; the all-zero digest itself is remembered in a flag.
 *
 * DigestTable: one open-addressing table mapping a digest to a non-negative int64, at most
 * half full (value -1 marks an empty slot), as keys.DigestTable.
 *
 * keep_first_block: merge's ``keep: first`` step over a block's usable rows
 * (corpusprov.stages.merge.keep_first_py, its reference): the dedup probe, the per-cell
 * tallies, the unique sources and the runs of kept lines to write, in one call a block
 * instead of a Python loop a row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define DIGEST_BYTES 16
#define SHARDS 256
#define SHARD_START 64

static uint64_t
load64(const unsigned char *p)
{
    uint64_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

static int
is_zero(const unsigned char *p)
{
    return load64(p) == 0 && load64(p + 8) == 0;
}

/* The digest of ``arg`` (bytes of length 16), or NULL with TypeError set. */
static const unsigned char *
digest_of(PyObject *arg)
{
    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) != DIGEST_BYTES) {
        PyErr_SetString(PyExc_TypeError, "a digest is 16 bytes");
        return NULL;
    }
    return (const unsigned char *)PyBytes_AS_STRING(arg);
}

/* ---------------------------------------------------------------- DigestSet */

typedef struct {
    unsigned char *keys;
    uint64_t mask;
    uint64_t size;
} Shard;

typedef struct {
    PyObject_HEAD
    Shard shards[SHARDS];
    int has_zero;
    Py_ssize_t count;
} DigestSetObject;

static void
set_dealloc(DigestSetObject *self)
{
    for (int i = 0; i < SHARDS; i++) {
        PyMem_Free(self->shards[i].keys);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
set_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":DigestSet", keywords)) {
        return NULL;
    }
    DigestSetObject *self = (DigestSetObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    for (int i = 0; i < SHARDS; i++) {
        self->shards[i].keys = PyMem_Calloc(SHARD_START, DIGEST_BYTES);
        if (self->shards[i].keys == NULL) {
            Py_DECREF(self);
            return PyErr_NoMemory();
        }
        self->shards[i].mask = SHARD_START - 1;
        self->shards[i].size = 0;
    }
    return (PyObject *)self;
}

/* The slot of ``digest`` in ``shard``: where it is, or the empty slot where it would go. */
static unsigned char *
shard_slot(const Shard *shard, const unsigned char *digest)
{
    uint64_t index = load64(digest + 1) & shard->mask;
    for (;;) {
        unsigned char *slot = shard->keys + index * DIGEST_BYTES;
        if (is_zero(slot) || memcmp(slot, digest, DIGEST_BYTES) == 0) {
            return slot;
        }
        index = (index + 1) & shard->mask;
    }
}

static int
shard_grow(Shard *shard)
{
    uint64_t old_slots = shard->mask + 1;
    uint64_t mask = old_slots * 2 - 1;
    unsigned char *keys = PyMem_Calloc(mask + 1, DIGEST_BYTES);
    if (keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Shard grown = {keys, mask, shard->size};
    for (uint64_t i = 0; i < old_slots; i++) {
        const unsigned char *old = shard->keys + i * DIGEST_BYTES;
        if (!is_zero(old)) {
            memcpy(shard_slot(&grown, old), old, DIGEST_BYTES);
        }
    }
    PyMem_Free(shard->keys);
    *shard = grown;
    return 0;
}

/* 1 when added, 0 when already there, -1 on error. */
static int
set_add_digest(DigestSetObject *self, const unsigned char *digest)
{
    if (is_zero(digest)) {
        if (self->has_zero) {
            return 0;
        }
        self->has_zero = 1;
        self->count++;
        return 1;
    }
    Shard *shard = &self->shards[digest[0]];
    unsigned char *slot = shard_slot(shard, digest);
    if (!is_zero(slot)) {
        return 0;
    }
    memcpy(slot, digest, DIGEST_BYTES);
    shard->size++;
    self->count++;
    /* Grow past 70% full (the reference's rule: size > slots * 0.7). */
    if (shard->size * 10 > (shard->mask + 1) * 7) {
        return shard_grow(shard) < 0 ? -1 : 1;
    }
    return 1;
}

static PyObject *
set_add(DigestSetObject *self, PyObject *arg)
{
    const unsigned char *digest = digest_of(arg);
    if (digest == NULL) {
        return NULL;
    }
    int added = set_add_digest(self, digest);
    if (added < 0) {
        return NULL;
    }
    return PyBool_FromLong(added);
}

static int
set_contains(DigestSetObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) != DIGEST_BYTES) {
        return 0;
    }
    const unsigned char *digest = (const unsigned char *)PyBytes_AS_STRING(arg);
    if (is_zero(digest)) {
        return self->has_zero;
    }
    return !is_zero(shard_slot(&self->shards[digest[0]], digest));
}

static Py_ssize_t
set_len(DigestSetObject *self)
{
    return self->count;
}

static PyObject *
set_nbytes(DigestSetObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t total = 0;
    for (int i = 0; i < SHARDS; i++) {
        total += (self->shards[i].mask + 1) * DIGEST_BYTES;
    }
    return PyLong_FromUnsignedLongLong(total);
}

static PyMethodDef set_methods[] = {
    {"add", (PyCFunction)set_add, METH_O, "Add a digest; False when it was already there."},
    {"nbytes", (PyCFunction)set_nbytes, METH_NOARGS, "Bytes held by the shards."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods set_as_sequence = {
    .sq_length = (lenfunc)set_len,
    .sq_contains = (objobjproc)set_contains,
};

static PyTypeObject DigestSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "corpusprov._digests.DigestSet",
    .tp_doc = PyDoc_STR("A set of 16-byte digests in 23-46 bytes each: for keep: first dedup."),
    .tp_basicsize = sizeof(DigestSetObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = set_new,
    .tp_dealloc = (destructor)set_dealloc,
    .tp_methods = set_methods,
    .tp_as_sequence = &set_as_sequence,
};

/* -------------------------------------------------------------- DigestTable */

#define EMPTY_VALUE (-1)

typedef struct {
    PyObject_HEAD
    unsigned char *keys;
    int64_t *values;
    uint64_t capacity;
    Py_ssize_t size;
} DigestTableObject;

static void
table_dealloc(DigestTableObject *self)
{
    PyMem_Free(self->keys);
    PyMem_Free(self->values);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
table_alloc(uint64_t capacity, unsigned char **keys, int64_t **values)
{
    *keys = PyMem_Calloc(capacity, DIGEST_BYTES);
    *values = PyMem_Malloc(capacity * sizeof(int64_t));
    if (*keys == NULL || *values == NULL) {
        PyMem_Free(*keys);
        PyMem_Free(*values);
        PyErr_NoMemory();
        return -1;
    }
    for (uint64_t i = 0; i < capacity; i++) {
        (*values)[i] = EMPTY_VALUE;
    }
    return 0;
}

static PyObject *
table_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"capacity", NULL};
    Py_ssize_t requested = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:DigestTable", keywords, &requested)) {
        return NULL;
    }
    uint64_t capacity = 8;
    while ((Py_ssize_t)capacity < requested) {
        capacity *= 2;
    }
    DigestTableObject *self = (DigestTableObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (table_alloc(capacity, &self->keys, &self->values) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->capacity = capacity;
    self->size = 0;
    return (PyObject *)self;
}

static uint64_t
table_slot(const unsigned char *keys, const int64_t *values, uint64_t capacity, const unsigned char *digest)
{
    uint64_t mask = capacity - 1;
    uint64_t index = load64(digest) & mask;
    while (values[index] != EMPTY_VALUE && memcmp(keys + index * DIGEST_BYTES, digest, DIGEST_BYTES) != 0) {
        index = (index + 1) & mask;
    }
    return index;
}

static int
table_grow(DigestTableObject *self)
{
    uint64_t capacity = self->capacity * 2;
    unsigned char *keys;
    int64_t *values;
    if (table_alloc(capacity, &keys, &values) < 0) {
        return -1;
    }
    for (uint64_t i = 0; i < self->capacity; i++) {
        if (self->values[i] == EMPTY_VALUE) {
            continue;
        }
        const unsigned char *digest = self->keys + i * DIGEST_BYTES;
        uint64_t index = table_slot(keys, values, capacity, digest);
        memcpy(keys + index * DIGEST_BYTES, digest, DIGEST_BYTES);
        values[index] = self->values[i];
    }
    PyMem_Free(self->keys);
    PyMem_Free(self->values);
    self->keys = keys;
    self->values = values;
    self->capacity = capacity;
    return 0;
}

/* Store ``value`` at the empty ``index``; grow past half full. */
static int
table_put(DigestTableObject *self, uint64_t index, const unsigned char *digest, int64_t value)
{
    memcpy(self->keys + index * DIGEST_BYTES, digest, DIGEST_BYTES);
    self->values[index] = value;
    self->size++;
    if ((uint64_t)self->size * 2 > self->capacity) {
        return table_grow(self);
    }
    return 0;
}

static int
parse_value(PyObject *arg, int64_t *value)
{
    long long parsed = PyLong_AsLongLong(arg);
    if (parsed == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (parsed < 0) {
        PyErr_SetString(PyExc_ValueError, "DigestTable values must be non-negative");
        return -1;
    }
    *value = parsed;
    return 0;
}

static PyObject *
table_get(DigestTableObject *self, PyObject *arg)
{
    const unsigned char *digest = digest_of(arg);
    if (digest == NULL) {
        return NULL;
    }
    int64_t value = self->values[table_slot(self->keys, self->values, self->capacity, digest)];
    if (value == EMPTY_VALUE) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(value);
}

/* set(digest, value) and setdefault(digest, value): the old value or None. */
static PyObject *
table_store(DigestTableObject *self, PyObject *const *args, Py_ssize_t nargs, int replace)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (digest, value)");
        return NULL;
    }
    const unsigned char *digest = digest_of(args[0]);
    int64_t value;
    if (digest == NULL || parse_value(args[1], &value) < 0) {
        return NULL;
    }
    uint64_t index = table_slot(self->keys, self->values, self->capacity, digest);
    int64_t old = self->values[index];
    if (old != EMPTY_VALUE) {
        if (replace) {
            self->values[index] = value;
        }
        return PyLong_FromLongLong(old);
    }
    if (table_put(self, index, digest, value) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
table_set(DigestTableObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return table_store(self, args, nargs, 1);
}

static PyObject *
table_setdefault(DigestTableObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return table_store(self, args, nargs, 0);
}

static PyObject *
table_values(DigestTableObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(self->size);
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t at = 0;
    for (uint64_t i = 0; i < self->capacity; i++) {
        if (self->values[i] == EMPTY_VALUE) {
            continue;
        }
        PyObject *value = PyLong_FromLongLong(self->values[i]);
        if (value == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, at++, value);
    }
    PyObject *iter = PyObject_GetIter(list);
    Py_DECREF(list);
    return iter;
}

static Py_ssize_t
table_len(DigestTableObject *self)
{
    return self->size;
}

static PyObject *
table_nbytes(DigestTableObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLongLong(self->capacity * (DIGEST_BYTES + sizeof(int64_t)));
}

static PyMethodDef table_methods[] = {
    {"get", (PyCFunction)table_get, METH_O, "The value stored for a digest, or None."},
    {"set", (PyCFunction)(void (*)(void))table_set, METH_FASTCALL,
     "Store a value for a digest; return the value it replaced, if any."},
    {"setdefault", (PyCFunction)(void (*)(void))table_setdefault, METH_FASTCALL,
     "Store a value if the digest is new and return None; else return the old value."},
    {"values", (PyCFunction)table_values, METH_NOARGS, "Every stored value, in no particular order."},
    {"nbytes", (PyCFunction)table_nbytes, METH_NOARGS, "Bytes held by the table's buffers."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods table_as_sequence = {
    .sq_length = (lenfunc)table_len,
};

static PyTypeObject DigestTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "corpusprov._digests.DigestTable",
    .tp_doc = PyDoc_STR("Open-addressing map from 16-byte digests to non-negative ints."),
    .tp_basicsize = sizeof(DigestTableObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = table_new,
    .tp_dealloc = (destructor)table_dealloc,
    .tp_methods = table_methods,
    .tp_as_sequence = &table_as_sequence,
};

/* ------------------------------------------------------------ keep_first_block */

/* stats[index] += 1 (a list of [rows, count, total]). */
static int
bump(PyObject *stats, Py_ssize_t index)
{
    PyObject *old = PyList_GET_ITEM(stats, index);
    Py_ssize_t value = PyLong_AsSsize_t(old);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *new = PyLong_FromSsize_t(value + 1);
    if (new == NULL) {
        return -1;
    }
    PyList_SET_ITEM(stats, index, new);
    Py_DECREF(old);
    return 0;
}

/* MergeSummary.add_cell(cell, vmaf) on its tallies dict: [rows, count, total] per cell. */
static int
add_cell(PyObject *cells, PyObject *cell, PyObject *vmaf)
{
    PyObject *stats = PyDict_GetItemWithError(cells, cell);
    if (stats == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        stats = Py_BuildValue("[nnd]", (Py_ssize_t)0, (Py_ssize_t)0, 0.0);
        if (stats == NULL || PyDict_SetItem(cells, cell, stats) < 0) {
            Py_XDECREF(stats);
            return -1;
        }
        Py_DECREF(stats); /* the dict holds it */
    }
    if (!PyList_CheckExact(stats) || PyList_GET_SIZE(stats) != 3) {
        PyErr_SetString(PyExc_TypeError, "a cell's tallies are [rows, count, total]");
        return -1;
    }
    if (bump(stats, 0) < 0) {
        return -1;
    }
    if (vmaf == Py_None) {
        return 0;
    }
    PyObject *total = PyList_GET_ITEM(stats, 2);
    PyObject *sum = PyNumber_Add(total, vmaf); /* total += vmaf, as Python adds them */
    if (sum == NULL || bump(stats, 1) < 0) {
        Py_XDECREF(sum);
        return -1;
    }
    PyList_SET_ITEM(stats, 2, sum);
    Py_DECREF(total);
    return 0;
}

static int
append_run(PyObject *runs, Py_ssize_t start, Py_ssize_t end, Py_ssize_t count)
{
    PyObject *run = Py_BuildValue("(nnn)", start, end, count);
    if (run == NULL) {
        return -1;
    }
    int status = PyList_Append(runs, run);
    Py_DECREF(run);
    return status;
}

static PyObject *
keep_first_block(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyObject_TypeCheck(args[0], &DigestSetType) || !PyObject_TypeCheck(args[1], &DigestSetType)
        || !PyDict_Check(args[2]) || !PyList_Check(args[3]) || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "expected (seen, sources, cells, rows, lengths as bytes)");
        return NULL;
    }
    DigestSetObject *seen = (DigestSetObject *)args[0];
    DigestSetObject *sources = (DigestSetObject *)args[1];
    PyObject *cells = args[2];
    PyObject *rows = args[3];
    Py_ssize_t count = PyList_GET_SIZE(rows);
    if (PyBytes_GET_SIZE(args[4]) != count * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "one length a row");
        return NULL;
    }
    const unsigned char *lengths = (const unsigned char *)PyBytes_AS_STRING(args[4]);
    PyObject *runs = PyList_New(0);
    if (runs == NULL) {
        return NULL;
    }
    Py_ssize_t start = 0, end = 0, run = 0, written = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) < 4) {
            PyErr_SetString(PyExc_TypeError, "a row is (digest, cell, vmaf, source digest)");
            goto error;
        }
        const unsigned char *digest = digest_of(PyTuple_GET_ITEM(row, 0));
        int added = digest == NULL ? -1 : set_add_digest(seen, digest);
        if (added < 0) {
            goto error;
        }
        if (added) {
            if (add_cell(cells, PyTuple_GET_ITEM(row, 1), PyTuple_GET_ITEM(row, 2)) < 0) {
                goto error;
            }
            PyObject *source = PyTuple_GET_ITEM(row, 3);
            int truthy = PyObject_IsTrue(source);
            if (truthy < 0) {
                goto error;
            }
            if (truthy) {
                const unsigned char *source_digest = digest_of(source);
                if (source_digest == NULL || set_add_digest(sources, source_digest) < 0) {
                    goto error;
                }
            }
            run++;
        } else if (run) {
            if (append_run(runs, start, end, run) < 0) {
                goto error;
            }
            written += run;
            run = 0;
        }
        uint32_t length;
        memcpy(&length, lengths + i * sizeof length, sizeof length);
        end += length;
        if (!run) {
            start = end;
        }
    }
    if (run) {
        if (append_run(runs, start, end, run) < 0) {
            goto error;
        }
        written += run;
    }
    PyObject *result = Py_BuildValue("(Nn)", runs, written);
    return result;
error:
    Py_DECREF(runs);
    return NULL;
}

static PyMethodDef digests_functions[] = {
    {"keep_first_block", (PyCFunction)(void (*)(void))keep_first_block, METH_FASTCALL,
     "keep_first_block(seen, sources, cells, rows, lengths) -> ([(start, end, rows) a run of kept lines], written)."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------- module */

static struct PyModuleDef digests_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corpusprov._digests",
    .m_doc = "Compact hash tables of 16-byte digests (native twins of corpusprov.stages.keys').",
    .m_size = -1,
    .m_methods = digests_functions,
};

PyMODINIT_FUNC
PyInit__digests(void)
{
    if (PyType_Ready(&DigestSetType) < 0 || PyType_Ready(&DigestTableType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&digests_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "DigestSet", (PyObject *)&DigestSetType) < 0
        || PyModule_AddObjectRef(module, "DigestTable", (PyObject *)&DigestTableType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
