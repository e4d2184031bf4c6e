/* Byte checks of the parser's fast path (corpusprov.io.rowparse), native twins of its
 * long_integer_py, quote_count_py and substitute_non_finite_py.
 *
 * The pure-Python functions in rowparse.py are the reference; these give the same answers
 * (property-tested against them) for less: on real-shaped 2 KB rows the Python checks cost
 * about 2.7 us (the big-integer fold and search), 1.2 us (each quote count) and 5.4 us (the
 * NaN swap, for a third of the rows) a row.
 *
 *   quote_count(data)         data.count(b'"'), in a loop the compiler vectorises
 *   long_integer(raw)         _LONG_INTEGER in raw.translate(_FOLD): 19+ digits right after
 *                             white space, ':', ',', '[' or '-'
 *   substitute_non_finite(raw, mark)
 *                             rowparse.substitute_non_finite_py(raw, mark)
 *
 * And one walk over a parsed row, for the stages' counters (corpusprov.stages.rowpolicy):
 *
 *   non_finite_count(row)     rowpolicy.non_finite_count_py(row): the NaN and infinite floats
 *                             at any depth of dicts and lists (5.8 us a real-shaped row in
 *                             Python, for the third of the rows that hold one)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static int
bytes_arg(PyObject *arg, const unsigned char **data, Py_ssize_t *size)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes");
        return -1;
    }
    *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    *size = PyBytes_GET_SIZE(arg);
    return 0;
}

static PyObject *
quote_count(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    Py_ssize_t total = 0;
    Py_ssize_t at = 0;
    /* Blocks of at most 255 bytes count into a byte-wide sum, which vectorises well. */
    while (at < size) {
        Py_ssize_t stop = size - at > 255 ? at + 255 : size;
        unsigned char part = 0;
        for (Py_ssize_t i = at; i < stop; i++) {
            part += data[i] == '"';
        }
        total += part;
        at = stop;
    }
    return PyLong_FromSsize_t(total);
}

/* The bytes rowparse._FOLD maps to " " (white space and what may stand before an integer). */
static int
before_integer(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':' || c == ',' || c == '[' || c == '-';
}

#define LONG_DIGITS 19

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static PyObject *
long_integer(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    /* A match is a maximal run of 19+ digits whose byte before folds to " ". Every such run
     * holds one of the probed bytes (19 apart), so only runs through a probe are measured:
     * a byte-by-byte scan costs ~3 ns a byte on float-heavy rows (a mispredicted branch at
     * every digit/non-digit change), the probes a fraction of that. */
    for (Py_ssize_t probe = LONG_DIGITS - 1; probe < size; probe += LONG_DIGITS) {
        if (!is_digit(data[probe])) {
            continue;
        }
        Py_ssize_t start = probe;
        while (start > 0 && is_digit(data[start - 1])) {
            start--;
        }
        Py_ssize_t end = probe + 1;
        while (end < size && is_digit(data[end])) {
            end++;
        }
        if (end - start >= LONG_DIGITS && start > 0 && before_integer(data[start - 1])) {
            Py_RETURN_TRUE;
        }
        /* data[end] is no digit: a next run of 19 starts after it, so it holds end + 19. */
        probe = end;
    }
    Py_RETURN_FALSE;
}

/* raw[index] with Python's negative indexing (callers stay within -size .. size-1). */
static unsigned char
at(const unsigned char *raw, Py_ssize_t size, Py_ssize_t index)
{
    return raw[index < 0 ? index + size : index];
}

/* Python's slice bound normalisation for raw[start:stop] / rfind's end. */
static Py_ssize_t
bound(Py_ssize_t index, Py_ssize_t size)
{
    if (index < 0) {
        index += size;
        if (index < 0) {
            index = 0;
        }
    }
    return index > size ? size : index;
}

static Py_ssize_t
find(const unsigned char *raw, Py_ssize_t size, const char *token, Py_ssize_t length, Py_ssize_t from)
{
    if (from > size - length) {
        return -1;
    }
    const unsigned char *hit = memmem(raw + from, (size_t)(size - from), token, (size_t)length);
    return hit == NULL ? -1 : hit - raw;
}

typedef struct {
    Py_ssize_t start;
    Py_ssize_t end;
    double value;
    Py_ssize_t key_start;
    Py_ssize_t key_stop;
} Found;

static int
by_start(const void *left, const void *right)
{
    Py_ssize_t a = ((const Found *)left)->start;
    Py_ssize_t b = ((const Found *)right)->start;
    return (a > b) - (a < b);
}

static PyObject *
substitute_non_finite(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *raw;
    const unsigned char *mark;
    Py_ssize_t size;
    Py_ssize_t mark_size;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (raw, mark)");
        return NULL;
    }
    if (bytes_arg(args[0], &raw, &size) < 0 || bytes_arg(args[1], &mark, &mark_size) < 0) {
        return NULL;
    }
    if (find(raw, size, (const char *)mark, mark_size, 0) != -1 || (size > 1 && memchr(raw + 1, '{', size - 1))) {
        Py_RETURN_NONE;
    }
    Found stack_found[16];
    Found *found = stack_found;
    Py_ssize_t count = 0;
    Py_ssize_t capacity = 16;
    static const char *tokens[2] = {"NaN", "Infinity"};
    static const Py_ssize_t lengths[2] = {3, 8};
    PyObject *result = NULL;
    for (int kind = 0; kind < 2; kind++) {
        double value = kind == 0 ? Py_NAN : Py_HUGE_VAL;
        Py_ssize_t hit = find(raw, size, tokens[kind], lengths[kind], 0);
        while (hit != -1) {
            Py_ssize_t end = hit + lengths[kind];
            Py_ssize_t start = (kind == 1 && at(raw, size, hit - 1) == '-') ? hit - 1 : hit;
            Py_ssize_t colon = at(raw, size, start - 1) == ':' ? start - 1 : start - 2;
            if (at(raw, size, colon) == ':' && at(raw, size, colon - 1) == '"'
                && (colon == start - 1 || at(raw, size, start - 1) == ' ')) {
                /* key = raw[raw.rfind(b'"', 0, colon - 1) + 1 : colon - 1] */
                Py_ssize_t stop = bound(colon - 1, size);
                Py_ssize_t quote = -1;
                for (Py_ssize_t i = stop - 1; i >= 0; i--) {
                    if (raw[i] == '"') {
                        quote = i;
                        break;
                    }
                }
                if (count == capacity) {
                    Found *grown = PyMem_Malloc(sizeof(Found) * (size_t)capacity * 2);
                    if (grown == NULL) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    memcpy(grown, found, sizeof(Found) * (size_t)count);
                    if (found != stack_found) {
                        PyMem_Free(found);
                    }
                    found = grown;
                    capacity *= 2;
                }
                Found *entry = &found[count++];
                entry->start = start;
                entry->end = end;
                entry->value = start < hit ? -value : value;
                entry->key_start = bound(quote + 1, size);
                entry->key_stop = stop;
            }
            hit = find(raw, size, tokens[kind], lengths[kind], end);
        }
    }
    if (count == 0) {
        /* The tokens were all inside strings (or bare where orjson refuses them). */
        PyObject *none_found = PyList_New(0);
        if (none_found != NULL) {
            result = PyTuple_Pack(2, args[0], none_found);
            Py_DECREF(none_found);
        }
        goto done;
    }
    qsort(found, (size_t)count, sizeof(Found), by_start);
    /* The pieces are sliced as Python slices them (raw[position:start], negative bounds
     * included: a start of -1 is possible at a line that begins with "Infinity"). */
    PyObject *restores = PyList_New(count);
    if (restores == NULL) {
        goto done;
    }
    Py_ssize_t text_size = 0;
    Py_ssize_t position = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Found *entry = &found[i];
        Py_ssize_t key_size = entry->key_stop - entry->key_start;
        const unsigned char *key = raw + entry->key_start;
        if (key_size > 0 && memchr(key, '\\', (size_t)key_size) != NULL) {
            Py_DECREF(restores);
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *name = PyUnicode_DecodeUTF8((const char *)key, key_size > 0 ? key_size : 0, "strict");
        if (name == NULL) {
            Py_DECREF(restores);
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();  /* a key that is not UTF-8: the careful path answers */
                result = Py_NewRef(Py_None);
            }
            goto done;
        }
        PyObject *number = PyFloat_FromDouble(entry->value);
        PyObject *pair = number == NULL ? NULL : PyTuple_Pack(2, name, number);
        Py_DECREF(name);
        Py_XDECREF(number);
        if (pair == NULL) {
            Py_DECREF(restores);
            goto done;
        }
        PyList_SET_ITEM(restores, i, pair);
        Py_ssize_t piece_start = bound(position, size);
        Py_ssize_t piece_stop = bound(entry->start, size);
        text_size += (piece_stop > piece_start ? piece_stop - piece_start : 0) + mark_size;
        position = entry->end;
    }
    Py_ssize_t tail_start = bound(position, size);
    text_size += size - tail_start;
    PyObject *text = PyBytes_FromStringAndSize(NULL, text_size);
    if (text == NULL) {
        Py_DECREF(restores);
        goto done;
    }
    char *out = PyBytes_AS_STRING(text);
    position = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t piece_start = bound(position, size);
        Py_ssize_t piece_stop = bound(found[i].start, size);
        if (piece_stop > piece_start) {
            memcpy(out, raw + piece_start, (size_t)(piece_stop - piece_start));
            out += piece_stop - piece_start;
        }
        memcpy(out, mark, (size_t)mark_size);
        out += mark_size;
        position = found[i].end;
    }
    memcpy(out, raw + tail_start, (size_t)(size - tail_start));
    result = PyTuple_Pack(2, text, restores);
    Py_DECREF(text);
    Py_DECREF(restores);
done:
    if (found != stack_found) {
        PyMem_Free(found);
    }
    return result;
}

/* An explicit stack of borrowed references, as the Python walk keeps: nothing runs Python
 * code during the walk, so the row cannot change under it. Exact types only (type(x) is
 * float / dict / list), as in the Python twin. */
static PyObject *
non_finite_count(PyObject *Py_UNUSED(module), PyObject *row)
{
    Py_ssize_t size = 0, capacity = 64;
    PyObject **stack = PyMem_Malloc(sizeof(PyObject *) * (size_t)capacity);
    if (stack == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t count = 0;
    stack[size++] = row;
    while (size > 0) {
        PyObject *item = stack[--size];
        Py_ssize_t more = 0;
        if (PyFloat_CheckExact(item)) {
            count += !isfinite(PyFloat_AS_DOUBLE(item));
            continue;
        }
        if (PyDict_CheckExact(item)) {
            more = PyDict_GET_SIZE(item);
        } else if (PyList_CheckExact(item)) {
            more = PyList_GET_SIZE(item);
        } else {
            continue;
        }
        if (size + more > capacity) {
            Py_ssize_t wanted = capacity;
            while (size + more > wanted) {
                wanted *= 2;
            }
            PyObject **grown = PyMem_Realloc(stack, sizeof(PyObject *) * (size_t)wanted);
            if (grown == NULL) {
                PyMem_Free(stack);
                return PyErr_NoMemory();
            }
            stack = grown;
            capacity = wanted;
        }
        if (PyDict_CheckExact(item)) {
            Py_ssize_t position = 0;
            PyObject *key, *value;
            while (PyDict_Next(item, &position, &key, &value)) {
                stack[size++] = value;
            }
        } else {
            for (Py_ssize_t i = 0; i < more; i++) {
                stack[size++] = PyList_GET_ITEM(item, i);
            }
        }
    }
    PyMem_Free(stack);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef bytescan_methods[] = {
    {"quote_count", (PyCFunction)quote_count, METH_O, "data.count(b'\"')."},
    {"long_integer", (PyCFunction)long_integer, METH_O,
     "True when 19+ digits follow white space, ':', ',', '[' or '-' (an integer that may not fit 64 bits)."},
    {"substitute_non_finite", (PyCFunction)(void (*)(void))substitute_non_finite, METH_FASTCALL,
     "rowparse's NaN/Infinity swap: (text, [(key, value)]) or None."},
    {"non_finite_count", (PyCFunction)non_finite_count, METH_O,
     "The NaN and infinite floats at any depth of a row's dicts and lists."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef bytescan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corpusprov._bytescan",
    .m_doc = "Byte checks of the parser's fast path (native twins of corpusprov.io.rowparse's).",
    .m_size = -1,
    .m_methods = bytescan_methods,
};

PyMODINIT_FUNC
PyInit__bytescan(void)
{
    return PyModule_Create(&bytescan_module);
}
