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
 *
 * And each stage's block of rows in one call (see merge_rows, aggregate_rows below):
 *
 *   merge_rows(lines, context)
 *   aggregate_rows(lines, context, override)
 *                             per line, what the Python path gives a usable row (its output
 *                             line and result tuple), or None where only that path may answer
 *
 * And the transcoder's two parts on their own, for the tests (see _canonical.h):
 *
 *   canonical(raw)            a raw line's canonical line, or None where it refuses
 *   format_float(x)           a finite float as orjson writes it
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_blake2b.h"
#include "_canonical.h"

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

static Py_ssize_t
count_quotes(const unsigned char *data, Py_ssize_t size)
{
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
    return total;
}

static PyObject *
quote_count(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(count_quotes(data, size));
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

static int
has_long_integer(const unsigned char *data, Py_ssize_t size)
{
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
            return 1;
        }
        /* data[end] is no digit: a next run of 19 starts after it, so it holds end + 19. */
        probe = end;
    }
    return 0;
}

static PyObject *
long_integer(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    return PyBool_FromLong(has_long_integer(data, size));
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

/* ---- merge_rows, aggregate_rows: a block's usable rows on their fast path, in one call ----
 *
 * Native twins of what corpusprov.stages.merge and corpusprov.stages.aggregate do for one
 * line when every check passes (jsonl.parse_line, rowparse._parse_fast, the stage's judge and
 * its block function's make_row): for each line either ``(output line, result tuple)``,
 * exactly as the Python path builds them, or None where only the Python path may answer
 * (anything unusual: blank, too long, escaped quotes, a parse error, a big integer, a missing
 * key, a non-finite key, a field of the wrong type, a non-finite policy other than keep, ...).
 * Aggregate's calls orjson's loads and dumps (they come in the context), so the bytes are
 * orjson's; merge's writes the canonical line with the transcoder of _canonical.h (orjson's
 * bytes without orjson's objects: the ~60 values of a real row are never built, only the few
 * its result reads) and refuses what the transcoder refuses. Each function is property-tested
 * against the Python path. */

static PyObject *source_name;  /* "src_sha256" */
static PyObject *encoder_name; /* "encoder" */
static PyObject *preset_name;  /* "preset" */
static PyObject *vmaf_name;    /* "vmaf_score" */
static PyObject *src_name;     /* "src" */
static PyObject *mos_name;     /* "mos" */
static PyObject *std_name;     /* "mos_std_dev" */
static PyObject *corpus_name;  /* "corpus" */
static PyObject *corpus_source_name; /* "corpus_source" */
static PyObject *mos_native_name;    /* "mos_native" */
static PyObject *mos_scale_name;     /* "mos_native_scale" */
static PyObject *option_kw;    /* ("option",) */

/* What both stages' contexts start with (the first 11 items of the context tuple). */
typedef struct {
    PyObject *loads, *dumps, *dumps_option, *key_person;
    PyObject *required, *key_fields, *mark, *mark_str;
    int crlf_accept, keep_non_finite;
    Py_ssize_t max_line_bytes;
} RowContext;

#define ROW_CONTEXT_ITEMS 11

static int
row_context(PyObject *tuple, Py_ssize_t items, RowContext *c)
{
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != items) {
        PyErr_Format(PyExc_TypeError, "context: expected a %zd-tuple", items);
        return -1;
    }
    PyObject *const *ctx = ((PyTupleObject *)tuple)->ob_item;
    c->loads = ctx[0];
    c->dumps = ctx[1];
    c->dumps_option = ctx[2];
    c->key_person = ctx[3];
    c->required = ctx[4];
    c->key_fields = ctx[5];
    c->crlf_accept = PyObject_IsTrue(ctx[6]);
    c->max_line_bytes = PyLong_AsSsize_t(ctx[7]);
    c->mark = ctx[8];
    c->mark_str = ctx[9];
    c->keep_non_finite = PyObject_IsTrue(ctx[10]);
    if (c->crlf_accept < 0 || c->keep_non_finite < 0 || (c->max_line_bytes == -1 && PyErr_Occurred())) {
        return -1;
    }
    if (!PyTuple_Check(c->required) || !PyTuple_Check(c->key_fields) || !PyBytes_Check(c->mark)
        || !PyUnicode_Check(c->mark_str)) {
        PyErr_SetString(PyExc_TypeError, "context: required and key_fields must be tuples, mark bytes, mark_str str");
        return -1;
    }
    return 0;
}

/* A 16-byte BLAKE2b digest of data with ``person`` (a bytes object), as a new bytes object:
 * hashlib.blake2b(data, digest_size=16, person=person).digest() without the hashlib object. */
static PyObject *
digest16(const char *data, Py_ssize_t size, PyObject *person)
{
    unsigned char digest[16];
    blake2b_person((const unsigned char *)data, (size_t)size, (const unsigned char *)PyBytes_AS_STRING(person),
                   (size_t)PyBytes_GET_SIZE(person), digest, sizeof digest);
    return PyBytes_FromStringAndSize((const char *)digest, sizeof digest);
}

/* keys.key_digest's fast branch over ``values`` (borrowed, count of them); NULL without an
 * exception where key_digest would take another branch or raise. */
static PyObject *
digest_of(RowContext *c, PyObject *const *values, Py_ssize_t count)
{
    PyObject *list = PyList_New(count);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = values[i];
        PyObject *kept = NULL;
        if (value == NULL) {
            /* a missing field: Python answers */
        } else if (PyFloat_CheckExact(value)) {
            double number = PyFloat_AS_DOUBLE(value);
            if (isfinite(number)) {
                kept = number == floor(number) ? PyLong_FromDouble(number) : Py_NewRef(value);
            }
        } else if (PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyBool_Check(value)
                   || value == Py_None) {
            kept = Py_NewRef(value);
        }
        if (kept == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, kept);
    }
    PyObject *encoded = PyObject_CallOneArg(c->dumps, list);
    Py_DECREF(list);
    if (encoded == NULL) {
        return NULL;
    }
    PyObject *digest = digest16(PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded), c->key_person);
    Py_DECREF(encoded);
    return digest;
}

/* key_digest(row, key_fields): the fields' values in order. */
static PyObject *
row_key_digest(RowContext *c, PyObject *row)
{
    Py_ssize_t count = PyTuple_GET_SIZE(c->key_fields);
    PyObject *stack_values[8];
    PyObject **values = count <= 8 ? stack_values : PyMem_Malloc(sizeof(PyObject *) * (size_t)count);
    if (values == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *digest = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        values[i] = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(c->key_fields, i));
        if (values[i] == NULL) {
            goto done;
        }
    }
    digest = digest_of(c, values, count);
done:
    if (values != stack_values) {
        PyMem_Free(values);
    }
    return digest;
}

static PyObject *
utf8_bytes(PyObject *text)
{
    Py_ssize_t size;
    const char *data = PyUnicode_AsUTF8AndSize(text, &size);
    return data == NULL ? NULL : PyBytes_FromStringAndSize(data, size);
}

static PyObject *
get_or_none(PyObject *row, PyObject *name)
{
    PyObject *value = PyDict_GetItemWithError(row, name);
    if (value == NULL) {
        return PyErr_Occurred() ? NULL : Py_None;
    }
    return value;
}

static const char *
token_of(double value, Py_ssize_t *length)
{
    if (isnan(value)) {
        *length = 3;
        return "NaN";
    }
    *length = value > 0 ? 8 : 9;
    return value > 0 ? "Infinity" : "-Infinity";
}

/* Every mark in ``line`` swapped for ``token``; NULL without an exception when ``line`` holds
 * other than ``count`` marks. */
static PyObject *
swap_marks(RowContext *c, PyObject *line, Py_ssize_t count, const char *token, Py_ssize_t token_size)
{
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(line);
    Py_ssize_t size = PyBytes_GET_SIZE(line);
    const char *mark = PyBytes_AS_STRING(c->mark);
    Py_ssize_t mark_size = PyBytes_GET_SIZE(c->mark);
    Py_ssize_t seen = 0;
    for (Py_ssize_t hit = find(data, size, mark, mark_size, 0); hit != -1;
         hit = find(data, size, mark, mark_size, hit + mark_size)) {
        seen++;
    }
    if (seen != count) {
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, size - count * (mark_size - token_size));
    if (result == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(result);
    Py_ssize_t position = 0;
    for (Py_ssize_t hit = find(data, size, mark, mark_size, 0); hit != -1;
         hit = find(data, size, mark, mark_size, hit + mark_size)) {
        memcpy(out, data + position, (size_t)(hit - position));
        out += hit - position;
        memcpy(out, token, (size_t)token_size);
        out += token_size;
        position = hit + mark_size;
    }
    memcpy(out, data + position, (size_t)(size - position));
    return result;
}

static int
has(const unsigned char *data, Py_ssize_t size, const char *token)
{
    return find(data, size, token, (Py_ssize_t)strlen(token), 0) != -1;
}

/* jsonl.parse_line + rowparse._parse_fast for one line (aggregate's; merge's lines take the
 * transcoder): a new reference to the row (its non-finite values restored), ``*special`` set
 * as the parser sets it; NULL (an exception set or not) where Python's path answers. The
 * row's canonical line is written only to check, by its quote count, that no duplicate key
 * was dropped. */
static PyObject *
fast_row(RowContext *c, PyObject *raw_line, int *special)
{
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(raw_line);
    Py_ssize_t size = PyBytes_GET_SIZE(raw_line);
    if (size > c->max_line_bytes || size == 0) {
        return NULL;
    }
    PyObject *raw = NULL, *text = NULL, *row = NULL, *line = NULL, *sub = NULL, *result = NULL;
    PyObject *restores = NULL;
    if (data[size - 1] == '\r') {
        if (!c->crlf_accept) {
            return NULL;
        }
        size--;
        raw = PyBytes_FromStringAndSize((const char *)data, size);
        if (raw == NULL) {
            return NULL;
        }
    } else {
        raw = Py_NewRef(raw_line);
    }
    if (size == 0 || data[0] != '{') {
        goto done; /* blank, white space first, or no object: Python's checks answer */
    }
    if (memchr(data, '\\', (size_t)size) != NULL && (has(data, size, "\\\"") || has(data, size, "\\u0022"))) {
        goto done;
    }
    text = Py_NewRef(raw);
    if ((memchr(data, 'N', (size_t)size) && has(data, size, "NaN"))
        || (memchr(data, 'I', (size_t)size) && has(data, size, "Infinity"))) {
        PyObject *args[2] = {raw, c->mark};
        sub = substitute_non_finite(NULL, args, 2);
        if (sub == NULL || sub == Py_None) {
            goto done;
        }
        Py_SETREF(text, Py_NewRef(PyTuple_GET_ITEM(sub, 0)));
        restores = PyTuple_GET_ITEM(sub, 1);
        if (PyList_GET_SIZE(restores) == 0) {
            restores = NULL;
        }
    }
    row = PyObject_CallOneArg(c->loads, text);
    if (row == NULL || !PyDict_CheckExact(row) || has_long_integer(data, size)) {
        goto done;
    }
    PyObject *dump_args[2] = {row, c->dumps_option};
    line = PyObject_Vectorcall(c->dumps, dump_args, 1, option_kw);
    if (line == NULL || !PyBytes_CheckExact(line)
        || count_quotes((const unsigned char *)PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
               != count_quotes((const unsigned char *)PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))) {
        goto done;
    }
    *special = 0;
    if (restores != NULL) {
        Py_ssize_t count = PyList_GET_SIZE(restores);
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *pair = PyList_GET_ITEM(restores, i);
            PyObject *held = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(pair, 0));
            if (held == NULL || !PyUnicode_CheckExact(held) || PyUnicode_Compare(held, c->mark_str) != 0) {
                goto done;
            }
            if (PyDict_SetItem(row, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) {
                goto done;
            }
        }
        *special = 1;
    }
    /* check_line: every required key. */
    Py_ssize_t required = PyTuple_GET_SIZE(c->required);
    for (Py_ssize_t i = 0; i < required; i++) {
        if (PyDict_Contains(row, PyTuple_GET_ITEM(c->required, i)) != 1) {
            goto done;
        }
    }
    result = Py_NewRef(row);
done:
    Py_XDECREF(raw);
    Py_XDECREF(text);
    Py_XDECREF(sub);
    Py_XDECREF(row);
    Py_XDECREF(line);
    return result;
}

/* The per-line answers of a block (aggregate's; merge's come from merge_answers, in two passes). */
static PyObject *
block_answers(PyObject *lines, PyObject *(*one)(void *, PyObject *, Py_ssize_t *), void *context)
{
    if (!PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "lines: expected a list of bytes");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(lines);
    PyObject *prepared = PyList_New(count);
    if (prepared == NULL) {
        return NULL;
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *raw = PyList_GET_ITEM(lines, i);
        PyObject *done = NULL;
        if (PyBytes_CheckExact(raw)) {
            Py_INCREF(raw);
            done = one(context, raw, &kept);
            Py_DECREF(raw);
        }
        if (done == NULL) {
            if (PyErr_Occurred()) {
                /* An exception is the line's (Python's path meets it again and answers);
                 * running out of memory, or an interrupt, is the run's. */
                if (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception)) {
                    Py_DECREF(prepared);
                    return NULL;
                }
                PyErr_Clear();
            }
            done = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(prepared, i, done);
    }
    PyObject *kept_count = PyLong_FromSsize_t(kept);
    if (kept_count == NULL) {
        Py_DECREF(prepared);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, prepared, kept_count);
    Py_DECREF(prepared);
    Py_DECREF(kept_count);
    return result;
}

/* ---- merge ---- */

/* A field name as UTF-8 (borrowed from its str), for lookups among a line's members. */
typedef struct {
    const char *text;
    Py_ssize_t size;
    PyObject *name;
} FieldName;

typedef struct {
    RowContext row;
    PyObject *source_person;
    CpLine line;
    FieldName *required; /* sorted by bytes */
    Py_ssize_t required_count;
    FieldName *keys; /* the key fields, in their order */
    Py_ssize_t key_count;
    FieldName *wanted; /* what the result tuple reads as values: encoder, preset, vmaf_score */
    Py_ssize_t wanted_count;
    CpBuffer key_text;
} MergeContext;

/* ((str(encoder), preset_text(preset)), vmaf or None) as the block function's make_row has them. */
static PyObject *
cell_and_vmaf(PyObject *row, PyObject **vmaf_out)
{
    PyObject *encoder = get_or_none(row, encoder_name);
    PyObject *preset = encoder == NULL ? NULL : get_or_none(row, preset_name);
    PyObject *vmaf = preset == NULL ? NULL : get_or_none(row, vmaf_name);
    if (vmaf == NULL) {
        return NULL;
    }
    if (PyFloat_CheckExact(vmaf)) {
        *vmaf_out = Py_NewRef(isfinite(PyFloat_AS_DOUBLE(vmaf)) ? vmaf : Py_None);
    } else if (PyLong_CheckExact(vmaf)) {
        double number = PyLong_AsDouble(vmaf);
        if (number == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        *vmaf_out = isfinite(number) ? PyFloat_FromDouble(number) : Py_NewRef(Py_None);
    } else {
        *vmaf_out = Py_NewRef(Py_None);
    }
    if (*vmaf_out == NULL) {
        return NULL;
    }
    PyObject *encoder_text = PyObject_Str(encoder);
    PyObject *preset_text = NULL;
    if (encoder_text != NULL) {
        double number = PyFloat_CheckExact(preset) ? PyFloat_AS_DOUBLE(preset) : 0.0;
        if (PyFloat_CheckExact(preset) && isfinite(number) && number == floor(number)) {
            PyObject *whole = PyLong_FromDouble(number);
            preset_text = whole == NULL ? NULL : PyObject_Str(whole);
            Py_XDECREF(whole);
        } else {
            preset_text = PyObject_Str(preset);
        }
    }
    PyObject *cell = preset_text == NULL ? NULL : PyTuple_Pack(2, encoder_text, preset_text);
    Py_XDECREF(encoder_text);
    Py_XDECREF(preset_text);
    if (cell == NULL) {
        Py_CLEAR(*vmaf_out);
    }
    return cell;
}

static int
field_compare(const void *a, const void *b)
{
    const FieldName *x = a, *y = b;
    return cp_bytes_compare(x->text, x->size, y->text, y->size);
}

/* The member named ``name`` among the transcoded line's sorted members, or NULL. */
static CpMember *
find_member(CpLine *t, const FieldName *name)
{
    Py_ssize_t low = 0, high = t->count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        CpMember *m = &t->members[middle];
        int order = cp_bytes_compare(m->key, m->key_size, name->text, name->size);
        if (order == 0) {
            return m;
        }
        if (order < 0) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return NULL;
}

/* A member's value as orjson.loads gives it (NaN as the float the parser restores); its
 * canonical text at ``base + m->at``. */
static PyObject *
member_value(PyObject *loads, const char *base, const CpMember *m)
{
    const char *text = base + m->at;
    switch (m->kind) {
    case CP_STRING:
        if (!m->escaped) {
            return PyUnicode_DecodeUTF8(text + 1, m->size - 2, "strict");
        }
        break;
    case CP_INT: {
        char digits[24];
        memcpy(digits, text, (size_t)m->size);
        digits[m->size] = '\0';
        return PyLong_FromString(digits, NULL, 10);
    }
    case CP_FLOAT:
        return PyFloat_FromDouble(m->number);
    case CP_TRUE:
        Py_RETURN_TRUE;
    case CP_FALSE:
        Py_RETURN_FALSE;
    case CP_NULL:
        Py_RETURN_NONE;
    case CP_NAN:
        return PyFloat_FromDouble(Py_NAN);
    default:
        break;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(text, m->size);
    if (bytes == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(loads, bytes);
    Py_DECREF(bytes);
    return value;
}

/* What the first phase (no GIL) keeps of a line for the second. */
typedef struct {
    int answered;           /* 1: take it; 0: the Python path answers; -1: out of memory */
    Py_ssize_t line_at, line_size; /* the canonical line, in MergeBlock.lines */
    Py_ssize_t nans;
    unsigned char digest[16], source[16];
    int has_source;
    CpMember fields[3];     /* c->wanted's (encoder, preset, vmaf_score); kind 0 when missing; text in the arena */
} MergeAnswer;

typedef struct {
    CpBuffer lines; /* the answered lines' canonical text, joined */
    CpBuffer arena; /* the fields' canonical text */
} MergeBlock;

/* keys.key_digest's fast branch on the transcoded line: blake2b of orjson.dumps of the key
 * fields' values, an integral float as the int it equals (the values' orjson text is their
 * canonical text already), at ``out``. 1, 0 where key_digest takes another branch or raises
 * (a missing field, NaN, a list, an integral float beyond 63 bits), -1 out of memory. */
static int
key_digest_into(MergeContext *c, unsigned char out[16])
{
    CpBuffer *text = &c->key_text;
    text->size = 0;
    if (cp_reserve(text, 2) < 0) {
        return -1;
    }
    text->data[text->size++] = '[';
    for (Py_ssize_t i = 0; i < c->key_count; i++) {
        CpMember *m = find_member(&c->line, &c->keys[i]);
        if (m == NULL || m->kind == CP_NAN || m->kind == CP_ARRAY) {
            return 0;
        }
        if (cp_reserve(text, m->size + 32) < 0) {
            return -1;
        }
        if (i > 0) {
            text->data[text->size++] = ',';
        }
        if (m->kind == CP_FLOAT && m->number == floor(m->number)) {
            if (!(fabs(m->number) < 9223372036854775808.0)) {
                return 0;
            }
            text->size += sprintf(text->data + text->size, "%lld", (long long)m->number);
        } else {
            memcpy(text->data + text->size, c->line.values.data + m->at, (size_t)m->size);
            text->size += m->size;
        }
    }
    text->data[text->size++] = ']';
    blake2b_person((const unsigned char *)text->data, (size_t)text->size,
                   (const unsigned char *)PyBytes_AS_STRING(c->row.key_person),
                   (size_t)PyBytes_GET_SIZE(c->row.key_person), out, 16);
    return 1;
}

/* Phase one of a merge line, without the GIL (no Python objects made or touched beyond the
 * context's bytes): jsonl.parse_line + rowparse._parse_fast + check_line + the policy's
 * non-finite check + the key and source digests on the native transcoder. */
static void
merge_line_native(MergeContext *c, const unsigned char *data, Py_ssize_t size, MergeAnswer *a, MergeBlock *block)
{
    a->answered = 0;
    if (size > c->row.max_line_bytes || size == 0) {
        return;
    }
    if (data[size - 1] == '\r') {
        if (!c->row.crlf_accept) {
            return;
        }
        size--;
    }
    CpLine *t = &c->line;
    int status = cp_transcode(t, data, size);
    if (status != CP_OK) {
        a->answered = status == CP_NO_MEMORY ? -1 : 0;
        return;
    }
    /* check_line: every required key (both sorted: one walk). */
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < c->required_count; i++) {
        const FieldName *name = &c->required[i];
        int order = 1;
        while (at < t->count) {
            CpMember *m = &t->members[at];
            order = cp_bytes_compare(m->key, m->key_size, name->text, name->size);
            if (order >= 0) {
                break;
            }
            at++;
        }
        if (order != 0) {
            return;
        }
    }
    if (t->nans > 0 && !c->row.keep_non_finite) {
        return; /* the policy changes or rejects the row: Python's path */
    }
    int keyed = key_digest_into(c, a->digest);
    if (keyed <= 0) {
        a->answered = keyed;
        return;
    }
    /* merge.source_digest: b"" unless src_sha256 is a non-empty string (one with escapes:
     * the Python path decodes it). */
    static const FieldName source_field = {"src_sha256", 10, NULL};
    CpMember *source = find_member(t, &source_field);
    a->has_source = source != NULL && source->kind == CP_STRING && source->size > 2;
    if (a->has_source) {
        if (source->escaped) {
            return;
        }
        blake2b_person((const unsigned char *)t->values.data + source->at + 1, (size_t)(source->size - 2),
                       (const unsigned char *)PyBytes_AS_STRING(c->source_person),
                       (size_t)PyBytes_GET_SIZE(c->source_person), a->source, 16);
    }
    for (Py_ssize_t i = 0; i < c->wanted_count && i < 3; i++) {
        CpMember *m = find_member(t, &c->wanted[i]);
        if (m == NULL) {
            a->fields[i].kind = 0;
            continue;
        }
        if (cp_reserve(&block->arena, m->size) < 0) {
            a->answered = -1;
            return;
        }
        a->fields[i] = *m;
        a->fields[i].at = block->arena.size;
        memcpy(block->arena.data + block->arena.size, t->values.data + m->at, (size_t)m->size);
        block->arena.size += m->size;
    }
    if (cp_reserve(&block->lines, t->line.size) < 0) {
        a->answered = -1;
        return;
    }
    a->line_at = block->lines.size;
    a->line_size = t->line.size;
    memcpy(block->lines.data + block->lines.size, t->line.data, (size_t)t->line.size);
    block->lines.size += t->line.size;
    a->nans = t->nans;
    a->answered = 1;
}

/* Phase two, with the GIL: a new (line, (digest, cell, vmaf, source digest)) tuple. */
static PyObject *
merge_answer(MergeContext *c, const MergeAnswer *a, const MergeBlock *block)
{
    PyObject *row = PyDict_New();
    if (row == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < c->wanted_count && i < 3; i++) {
        if (a->fields[i].kind == 0) {
            continue;
        }
        PyObject *value = member_value(c->row.loads, block->arena.data, &a->fields[i]);
        if (value == NULL || PyDict_SetItem(row, c->wanted[i].name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(row);
            return NULL;
        }
        Py_DECREF(value);
    }
    PyObject *vmaf = NULL;
    PyObject *cell = cell_and_vmaf(row, &vmaf);
    Py_DECREF(row);
    if (cell == NULL) {
        return NULL;
    }
    PyObject *digest = PyBytes_FromStringAndSize((const char *)a->digest, 16);
    PyObject *source = PyBytes_FromStringAndSize((const char *)a->source, a->has_source ? 16 : 0);
    PyObject *line = PyBytes_FromStringAndSize(block->lines.data + a->line_at, a->line_size);
    PyObject *tuple = digest == NULL || source == NULL ? NULL : PyTuple_Pack(4, digest, cell, vmaf, source);
    PyObject *result = tuple == NULL || line == NULL ? NULL : PyTuple_Pack(2, line, tuple);
    Py_XDECREF(digest);
    Py_XDECREF(source);
    Py_XDECREF(line);
    Py_XDECREF(tuple);
    Py_DECREF(cell);
    Py_DECREF(vmaf);
    return result;
}

/* A block's lines: phase one for all of them with the GIL released (so a stage may run blocks
 * in threads), then the answers as block_answers gives them. */
static PyObject *
merge_answers(MergeContext *c, PyObject *lines)
{
    if (!PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "lines: expected a list of bytes");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(lines);
    MergeAnswer *answers = PyMem_RawCalloc((size_t)(count > 0 ? count : 1), sizeof(MergeAnswer));
    const unsigned char **data = PyMem_RawMalloc(sizeof(*data) * (size_t)(count > 0 ? count : 1));
    Py_ssize_t *sizes = PyMem_RawMalloc(sizeof(*sizes) * (size_t)(count > 0 ? count : 1));
    MergeBlock block = {{NULL, 0, 0}, {NULL, 0, 0}};
    PyObject *prepared = NULL, *result = NULL;
    if (answers == NULL || data == NULL || sizes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *raw = PyList_GET_ITEM(lines, i);
        data[i] = PyBytes_CheckExact(raw) ? (const unsigned char *)PyBytes_AS_STRING(raw) : NULL;
        sizes[i] = data[i] == NULL ? 0 : PyBytes_GET_SIZE(raw);
    }
    /* The list is the block's own and its bytes are immutable: safe to read without the GIL
     * while the caller's reference keeps them alive. */
    int no_memory = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && !no_memory; i++) {
        if (data[i] != NULL) {
            merge_line_native(c, data[i], sizes[i], &answers[i], &block);
            no_memory = answers[i].answered < 0;
        }
    }
    Py_END_ALLOW_THREADS
    if (no_memory) {
        PyErr_NoMemory();
        goto done;
    }
    prepared = PyList_New(count);
    if (prepared == NULL) {
        goto done;
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *answer = NULL;
        if (answers[i].answered == 1) {
            answer = merge_answer(c, &answers[i], &block);
            if (answer == NULL) {
                /* An exception is the line's (Python's path meets it again and answers);
                 * running out of memory, or an interrupt, is the run's. */
                if (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception)) {
                    goto done;
                }
                PyErr_Clear();
            } else {
                kept += answers[i].nans;
            }
        }
        PyList_SET_ITEM(prepared, i, answer == NULL ? Py_NewRef(Py_None) : answer);
    }
    result = Py_BuildValue("(On)", prepared, kept);
done:
    Py_XDECREF(prepared);
    PyMem_RawFree(answers);
    PyMem_RawFree(data);
    PyMem_RawFree(sizes);
    cp_release(&block.lines);
    cp_release(&block.arena);
    return result;
}

/* The str names of ``names`` as UTF-8; ``sorted``: sorted, duplicates once. */
static int
field_names(PyObject *names, int sorted, FieldName **out, Py_ssize_t *count)
{
    Py_ssize_t total = PyTuple_GET_SIZE(names);
    FieldName *fields = PyMem_Malloc(sizeof(FieldName) * (size_t)(total > 0 ? total : 1));
    *out = fields;
    *count = 0;
    if (fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "field names must be str");
            return -1;
        }
        fields[i].name = name;
        fields[i].text = PyUnicode_AsUTF8AndSize(name, &fields[i].size);
        if (fields[i].text == NULL) {
            return -1;
        }
    }
    if (!sorted) {
        *count = total;
        return 0;
    }
    qsort(fields, (size_t)total, sizeof(FieldName), field_compare);
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < total; i++) {
        if (kept == 0 || field_compare(&fields[kept - 1], &fields[i]) != 0) {
            fields[kept++] = fields[i];
        }
    }
    *count = kept;
    return 0;
}

static PyObject *
merge_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    MergeContext c;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (lines, context)");
        return NULL;
    }
    if (row_context(args[1], ROW_CONTEXT_ITEMS + 1, &c.row) < 0) {
        return NULL;
    }
    c.source_person = PyTuple_GET_ITEM(args[1], ROW_CONTEXT_ITEMS);
    if (!PyBytes_Check(c.row.key_person) || !PyBytes_Check(c.source_person)) {
        PyErr_SetString(PyExc_TypeError, "context: the personalisations must be bytes");
        return NULL;
    }
    c.required = c.keys = c.wanted = NULL;
    memset(&c.key_text, 0, sizeof c.key_text);
    memset(&c.line, 0, sizeof c.line);
    PyObject *answers = NULL;
    PyObject *read = PyTuple_Pack(3, encoder_name, preset_name, vmaf_name);
    if (read != NULL && field_names(c.row.required, 1, &c.required, &c.required_count) == 0
        && field_names(c.row.key_fields, 0, &c.keys, &c.key_count) == 0
        && field_names(read, 1, &c.wanted, &c.wanted_count) == 0) {
        if (cp_init(&c.line) < 0) {
            PyErr_NoMemory();
        } else {
            answers = merge_answers(&c, args[0]);
        }
    }
    Py_XDECREF(read);
    PyMem_Free(c.required);
    PyMem_Free(c.keys);
    PyMem_Free(c.wanted);
    cp_release(&c.key_text);
    cp_free(&c.line);
    return answers;
}

/* ---- aggregate ---- */

enum { FIELD_STR = 0, FIELD_INT = 1, FIELD_FLOAT = 2 };

typedef struct {
    RowContext row;
    PyObject *scales;   /* dict: label -> (native_min, native_max, slope, intercept, span, scale label) */
    double slack;
    int std_unified;
    PyObject *copied;   /* tuple of (name, kind code, default) */
    PyObject *unified_names; /* frozenset */
    PyObject *override; /* str or None */
} AggregateContext;

/* One copied field of the unified row (mosrow._copy_field for the values it keeps as they
 * are); a new reference, or NULL without an exception where Python's path answers. */
static PyObject *
copied_value(PyObject *value, int kind, PyObject *fallback, int *special)
{
    if (value == NULL || value == Py_None) {
        return Py_NewRef(fallback);
    }
    if (kind == FIELD_STR) {
        return PyUnicode_CheckExact(value) ? Py_NewRef(value) : NULL;
    }
    if (kind == FIELD_INT) {
        if (PyLong_CheckExact(value)) {
            return Py_NewRef(value); /* orjson's ints fit 64 bits */
        }
        if (PyFloat_CheckExact(value)) {
            double number = PyFloat_AS_DOUBLE(value);
            /* int(1e300) is a big integer only the careful writer writes: Python's path. */
            if (isfinite(number) && number == floor(number) && fabs(number) < 9.0e18) {
                return PyLong_FromDouble(number);
            }
        }
        return NULL;
    }
    if (PyFloat_CheckExact(value)) {
        *special |= !isfinite(PyFloat_AS_DOUBLE(value));
        return Py_NewRef(value);
    }
    if (PyLong_CheckExact(value)) {
        double number = PyLong_AsDouble(value);
        return number == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(number);
    }
    return NULL;
}

/* A number as mosrow._number reads one that is no string: the double, or -1 for no number
 * and 1 for a numeric string (Python's path: it counts numbers_from_strings). */
static int
number_of(PyObject *value, double *out)
{
    if (value == NULL || value == Py_None) {
        return -1;
    }
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 0;
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long whole = PyLong_AsLongLongAndOverflow(value, &overflow);
        /* Past 2**53 a double is not the int Python compares exactly: Python's path. */
        if (overflow || whole > (1LL << 53) || whole < -(1LL << 53)) {
            return 1;
        }
        *out = (double)whole;
        return 0;
    }
    return PyUnicode_CheckExact(value) ? 1 : -1;
}

static PyObject *
sort_key_of(AggregateContext *c, PyObject *out, PyObject *label)
{
    /* mosrow.AggregateJudge.sort_key(out, label) */
    Py_ssize_t count = PyTuple_GET_SIZE(c->row.key_fields);
    int keyed = 1;
    for (Py_ssize_t i = 0; i < count && keyed; i++) {
        PyObject *value = PyDict_GetItemWithError(out, PyTuple_GET_ITEM(c->row.key_fields, i));
        if (value == NULL && PyErr_Occurred()) {
            return NULL;
        }
        keyed = value != NULL && PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) > 0;
    }
    PyObject *parts = PyList_New(0);
    if (parts == NULL) {
        return NULL;
    }
    PyObject *piece = utf8_bytes(label);
    if (piece == NULL || PyList_Append(parts, piece) < 0) {
        goto fail;
    }
    Py_CLEAR(piece);
    PyObject *sha = get_or_none(out, source_name);
    if (sha == NULL) {
        goto fail;
    }
    if (sha == Py_None) {
        piece = PyBytes_FromStringAndSize("", 0);
    } else if (PyUnicode_CheckExact(sha)) {
        piece = utf8_bytes(sha);
    } else {
        goto fail; /* never: the unified row's src_sha256 is a string */
    }
    if (piece == NULL || PyList_Append(parts, piece) < 0) {
        goto fail;
    }
    Py_CLEAR(piece);
    if (keyed) {
        for (Py_ssize_t i = 0; i < count; i++) {
            piece = utf8_bytes(PyDict_GetItem(out, PyTuple_GET_ITEM(c->row.key_fields, i)));
            if (piece == NULL || PyList_Append(parts, piece) < 0) {
                goto fail;
            }
            Py_CLEAR(piece);
        }
    } else {
        PyObject *src = get_or_none(out, src_name);
        if (src == NULL || !(src == Py_None || PyUnicode_CheckExact(src))) {
            goto fail; /* never: the unified row's src is a string */
        }
        PyObject *text = src == Py_None ? PyUnicode_FromFormat("__nokey__//%U", label)
                                        : PyUnicode_FromFormat("__nokey__/%U/%U", src, label);
        piece = text == NULL ? NULL : utf8_bytes(text);
        Py_XDECREF(text);
        if (piece == NULL || PyList_Append(parts, piece) < 0) {
            goto fail;
        }
        Py_CLEAR(piece);
    }
    Py_ssize_t total = PyList_GET_SIZE(parts) - 1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts); i++) {
        total += PyBytes_GET_SIZE(PyList_GET_ITEM(parts, i));
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
    if (joined != NULL) {
        char *at = PyBytes_AS_STRING(joined);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts); i++) {
            PyObject *part = PyList_GET_ITEM(parts, i);
            if (i > 0) {
                *at++ = '\0';
            }
            memcpy(at, PyBytes_AS_STRING(part), (size_t)PyBytes_GET_SIZE(part));
            at += PyBytes_GET_SIZE(part);
        }
    }
    Py_DECREF(parts);
    return joined;
fail:
    Py_XDECREF(piece);
    Py_DECREF(parts);
    return NULL;
}

/* One line: a new (line, (digest, label, std, sort key, unified, native, dropped)), or NULL. */
static PyObject *
aggregate_line(void *context, PyObject *raw_line, Py_ssize_t *kept)
{
    AggregateContext *c = context;
    int special = 0;
    PyObject *row = fast_row(&c->row, raw_line, &special);
    if (row == NULL) {
        return NULL;
    }
    PyObject *result = NULL, *out = NULL, *digest = NULL, *line = NULL, *sort_key = NULL;
    PyObject *label = c->override;
    if (label == Py_None) {
        PyObject *source = PyDict_GetItemWithError(row, corpus_source_name);
        if (source != NULL && source != Py_None && !(PyUnicode_CheckExact(source) && PyUnicode_GET_LENGTH(source) == 0)) {
            label = source;
        } else {
            label = PyDict_GetItemWithError(row, corpus_name);
        }
    }
    if (label == NULL || !PyUnicode_CheckExact(label)) {
        goto done;
    }
    PyObject *scale = PyDict_GetItemWithError(c->scales, label);
    if (scale == NULL || !PyTuple_Check(scale) || PyTuple_GET_SIZE(scale) != 6) {
        goto done;
    }
    double native_min = PyFloat_AsDouble(PyTuple_GET_ITEM(scale, 0));
    double native_max = PyFloat_AsDouble(PyTuple_GET_ITEM(scale, 1));
    double slope = PyFloat_AsDouble(PyTuple_GET_ITEM(scale, 2));
    double intercept = PyFloat_AsDouble(PyTuple_GET_ITEM(scale, 3));
    double span = PyFloat_AsDouble(PyTuple_GET_ITEM(scale, 4));
    if (PyErr_Occurred()) {
        goto done;
    }
    double mos;
    if (number_of(PyDict_GetItemWithError(row, mos_name), &mos) != 0 || !isfinite(mos)
        || !(native_min - c->slack <= mos && mos <= native_max + c->slack)) {
        goto done;
    }
    double unified = slope * mos + intercept;
    double std = 0.0;
    PyObject *std_value = PyDict_GetItemWithError(row, std_name);
    int std_kind = std_value == NULL ? -1 : number_of(std_value, &std);
    if (std_kind == 1 || (std_value == NULL && PyErr_Occurred())) {
        goto done; /* a numeric string (counted by Python), or a lookup error */
    }
    /* The unified row: mosrow.AggregateJudge._unified_row. */
    out = PyDict_New();
    if (out == NULL) {
        goto done;
    }
    int out_special = 0;
    Py_ssize_t copied = PyTuple_GET_SIZE(c->copied);
    for (Py_ssize_t i = 0; i < copied; i++) {
        PyObject *field = PyTuple_GET_ITEM(c->copied, i);
        PyObject *name = PyTuple_GET_ITEM(field, 0);
        int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(field, 1));
        PyObject *fallback = name == corpus_name || PyUnicode_Compare(name, corpus_name) == 0
                                 ? label : PyTuple_GET_ITEM(field, 2);
        PyObject *value = PyDict_GetItemWithError(row, name);
        if (value == NULL && PyErr_Occurred()) {
            goto done;
        }
        PyObject *held = copied_value(value, kind, fallback, &out_special);
        if (held == NULL || PyDict_SetItem(out, name, held) < 0) {
            Py_XDECREF(held);
            goto done;
        }
        Py_DECREF(held);
    }
    PyObject *unified_value = PyFloat_FromDouble(unified);
    PyObject *native_value = unified_value == NULL ? NULL : PyFloat_FromDouble(mos);
    int stored = native_value != NULL && PyDict_SetItem(out, mos_name, unified_value) == 0
                 && PyDict_SetItem(out, mos_native_name, native_value) == 0
                 && PyDict_SetItem(out, mos_scale_name, PyTuple_GET_ITEM(scale, 5)) == 0
                 && PyDict_SetItem(out, corpus_source_name, label) == 0;
    Py_XDECREF(unified_value);
    Py_XDECREF(native_value);
    if (!stored) {
        goto done;
    }
    /* dropped: the input row has a key the unified row does not. */
    int dropped = 0;
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (!dropped && PyDict_Next(row, &position, &key, &value)) {
        int in = PySet_Contains(c->unified_names, key);
        if (in < 0) {
            goto done;
        }
        dropped = !in;
    }
    /* The key: mosrow.AggregateJudge._key. */
    Py_ssize_t fields = PyTuple_GET_SIZE(c->row.key_fields);
    int keyed = 1;
    for (Py_ssize_t i = 0; i < fields && keyed; i++) {
        PyObject *held = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(c->row.key_fields, i));
        if (held == NULL && PyErr_Occurred()) {
            goto done;
        }
        keyed = held != NULL && PyUnicode_CheckExact(held) && PyUnicode_GET_LENGTH(held) > 0;
    }
    if (keyed) {
        digest = row_key_digest(&c->row, row);
    } else {
        PyObject *src = get_or_none(row, src_name);
        if (src == NULL) {
            goto done;
        }
        PyObject *values[3] = {Py_True, src, label};
        digest = digest_of(&c->row, values, 3);
    }
    if (digest == NULL) {
        goto done;
    }
    double std_compared;
    if (std_kind != 0 || !isfinite(std) || std <= 0) {
        std_compared = Py_HUGE_VAL;
    } else if (c->std_unified) {
        std_compared = std * 100.0 / span;
    } else {
        std_compared = std;
    }
    if (out_special) {
        /* Non-finite floats in the unified row: the careful writer's tokens, and (with keep)
         * counted; another policy changes the row, which Python's path does. */
        if (!c->row.keep_non_finite) {
            goto done;
        }
        Py_ssize_t marks = 0, token_size = 0;
        const char *token = NULL;
        for (Py_ssize_t i = 0; i < copied; i++) {
            PyObject *name = PyTuple_GET_ITEM(PyTuple_GET_ITEM(c->copied, i), 0);
            PyObject *held = PyDict_GetItem(out, name);
            if (held != NULL && PyFloat_CheckExact(held) && !isfinite(PyFloat_AS_DOUBLE(held))) {
                Py_ssize_t size;
                const char *this = token_of(PyFloat_AS_DOUBLE(held), &size);
                if (token != NULL && this != token) {
                    goto done; /* mixed tokens: the writer's placeholders keep their order */
                }
                token = this;
                token_size = size;
                if (PyDict_SetItem(out, name, c->row.mark_str) < 0) {
                    goto done;
                }
                marks++;
            }
        }
        PyObject *dump_args[2] = {out, c->row.dumps_option};
        PyObject *marked = PyObject_Vectorcall(c->row.dumps, dump_args, 1, option_kw);
        if (marked == NULL) {
            goto done;
        }
        line = swap_marks(&c->row, marked, marks, token, token_size);
        Py_DECREF(marked);
        if (line == NULL) {
            goto done;
        }
        if (special) {
            *kept += marks;
        }
        /* sort_key reads the key fields and src/src_sha256, which are strings: marks never matter. */
    } else {
        PyObject *dump_args[2] = {out, c->row.dumps_option};
        line = PyObject_Vectorcall(c->row.dumps, dump_args, 1, option_kw);
        if (line == NULL) {
            goto done;
        }
    }
    sort_key = sort_key_of(c, out, label);
    if (sort_key == NULL) {
        goto done;
    }
    PyObject *std_object = PyFloat_FromDouble(std_compared);
    PyObject *unified_object = std_object == NULL ? NULL : PyFloat_FromDouble(unified);
    PyObject *native_object = unified_object == NULL ? NULL : PyFloat_FromDouble(mos);
    PyObject *tuple = native_object == NULL ? NULL
                                            : PyTuple_Pack(7, digest, label, std_object, sort_key, unified_object,
                                                           native_object, dropped ? Py_True : Py_False);
    Py_XDECREF(std_object);
    Py_XDECREF(unified_object);
    Py_XDECREF(native_object);
    if (tuple != NULL) {
        result = PyTuple_Pack(2, line, tuple);
        Py_DECREF(tuple);
    }
done:
    Py_DECREF(row);
    Py_XDECREF(out);
    Py_XDECREF(digest);
    Py_XDECREF(line);
    Py_XDECREF(sort_key);
    return result;
}

static PyObject *
aggregate_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    AggregateContext c;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (lines, context, override)");
        return NULL;
    }
    if (row_context(args[1], ROW_CONTEXT_ITEMS + 5, &c.row) < 0) {
        return NULL;
    }
    PyObject *const *more = ((PyTupleObject *)args[1])->ob_item + ROW_CONTEXT_ITEMS;
    c.scales = more[0];
    c.slack = PyFloat_AsDouble(more[1]);
    c.std_unified = PyObject_IsTrue(more[2]);
    c.copied = more[3];
    c.unified_names = more[4];
    c.override = args[2];
    if ((c.slack == -1.0 && PyErr_Occurred()) || c.std_unified < 0) {
        return NULL;
    }
    if (!PyDict_Check(c.scales) || !PyTuple_Check(c.copied) || !PyAnySet_Check(c.unified_names)
        || !(c.override == Py_None || PyUnicode_CheckExact(c.override))) {
        PyErr_SetString(PyExc_TypeError, "context: scales dict, copied tuple, unified names set, override str or None");
        return NULL;
    }
    return block_answers(args[0], aggregate_line, &c);
}


/* format_float(x): x as orjson writes it (the transcoder's float printer). */
static PyObject *
format_float(PyObject *Py_UNUSED(module), PyObject *arg)
{
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!isfinite(value)) {
        PyErr_SetString(PyExc_ValueError, "format_float: a finite float");
        return NULL;
    }
    char text[32];
    int size = cp_format_double(value, text);
    return PyBytes_FromStringAndSize(text, size);
}

/* canonical(raw): the transcoder's canonical line of one raw line (no line break), or None. */
static PyObject *
canonical(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    CpLine t;
    if (cp_init(&t) < 0) {
        return PyErr_NoMemory();
    }
    int status = cp_transcode(&t, data, size);
    PyObject *result = status == CP_OK ? PyBytes_FromStringAndSize(t.line.data, t.line.size)
                       : status == CP_REFUSED ? Py_NewRef(Py_None)
                                              : PyErr_NoMemory();
    cp_free(&t);
    return result;
}

/* blake2b16(data, person): hashlib.blake2b(data, digest_size=16, person=person).digest(). */
static PyObject *
blake2b16(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *data, *person;
    Py_ssize_t size, person_size;
    if (nargs != 2 || bytes_arg(args[0], &data, &size) < 0 || bytes_arg(args[1], &person, &person_size) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "expected (data, person)");
        }
        return NULL;
    }
    if (person_size > 16) {
        PyErr_SetString(PyExc_ValueError, "person: at most 16 bytes");
        return NULL;
    }
    return digest16((const char *)data, size, args[1]);
}

static PyMethodDef bytescan_methods[] = {
    {"blake2b16", (PyCFunction)(void (*)(void))blake2b16, METH_FASTCALL,
     "hashlib.blake2b(data, digest_size=16, person=person).digest(), natively."},
    {"format_float", (PyCFunction)format_float, METH_O, "A finite float as orjson writes it (the native printer)."},
    {"canonical", (PyCFunction)canonical, METH_O,
     "The native transcoder's canonical line of one raw line, or None where the Python path answers."},
    {"quote_count", (PyCFunction)quote_count, METH_O, "data.count(b'\"')."},
    {"long_integer", (PyCFunction)long_integer, METH_O,
     "True when 19+ digits follow white space, ':', ',', '[' or '-' (an integer that may not fit 64 bits)."},
    {"substitute_non_finite", (PyCFunction)(void (*)(void))substitute_non_finite, METH_FASTCALL,
     "rowparse's NaN/Infinity swap: (text, [(key, value)]) or None."},
    {"non_finite_count", (PyCFunction)non_finite_count, METH_O,
     "The NaN and infinite floats at any depth of a row's dicts and lists."},
    {"merge_rows", (PyCFunction)(void (*)(void))merge_rows, METH_FASTCALL,
     "merge_rows(lines, context) -> ([(line, result) or None per line], non-finite values kept)."},
    {"aggregate_rows", (PyCFunction)(void (*)(void))aggregate_rows, METH_FASTCALL,
     "aggregate_rows(lines, context, override) -> ([(line, result) or None per line], non-finite values kept)."},
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
    source_name = PyUnicode_InternFromString("src_sha256");
    encoder_name = PyUnicode_InternFromString("encoder");
    preset_name = PyUnicode_InternFromString("preset");
    vmaf_name = PyUnicode_InternFromString("vmaf_score");
    src_name = PyUnicode_InternFromString("src");
    mos_name = PyUnicode_InternFromString("mos");
    std_name = PyUnicode_InternFromString("mos_std_dev");
    corpus_name = PyUnicode_InternFromString("corpus");
    corpus_source_name = PyUnicode_InternFromString("corpus_source");
    mos_native_name = PyUnicode_InternFromString("mos_native");
    mos_scale_name = PyUnicode_InternFromString("mos_native_scale");
    /* The keyword name interned: orjson matches it by identity. */
    PyObject *option = PyUnicode_InternFromString("option");
    option_kw = option == NULL ? NULL : PyTuple_Pack(1, option);
    Py_XDECREF(option);
    if (source_name == NULL || encoder_name == NULL || preset_name == NULL || vmaf_name == NULL || src_name == NULL
        || mos_name == NULL || std_name == NULL || corpus_name == NULL || corpus_source_name == NULL
        || mos_native_name == NULL || mos_scale_name == NULL || option_kw == NULL) {
        return NULL;
    }
    return PyModule_Create(&bytescan_module);
}
