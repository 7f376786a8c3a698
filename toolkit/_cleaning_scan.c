/* The character passes of toolkit.cleaning in C: one scan of the string that maps its characters by tables and
 * finds the texts holding a flagged one (steps 1-2), or maps the late full-width forms and collapses whitespace.
 *
 * toolkit/cleaning.py builds the tables from the options (_compiled_tables) and calls chars() on a slice of texts
 * joined by a separator; without this module it runs the same tables through one regular expression
 * (_Plan.early_re) and str.replace, with the same results (tests/test_cleaning_properties.py compares the two).
 * Built by setup.py when a C compiler is there.
 *
 * chars(text, sep, kinds, maps, astral_maps, astral_flags, collapse=False) -> (new text, flagged)
 *   kinds        bytes of 16384, two bits per BMP code point c, at bits 2 * (c % 4) of byte c / 4: bit 1 = replaced
 *                by maps[c], bit 2 = flagged (packed, so that the table stays in the CPU's first-level cache)
 *   maps         tuple of 65536: the replacement str of each BMP code point whose bit 1 is set (else None)
 *   astral_maps  dict {code point: str} of replaced astral code points
 *   astral_flags frozenset of flagged astral code points
 *   sep          the separator of the joined texts ("" for one text)
 *   collapse     also make runs of spaces in the result one space and drop the spaces at the ends of every text
 *                (cleaning.py maps the late full-width forms so, after steps 3-10, instead of steps 1-2)
 *   flagged      the indices (0 = the first text) of the texts holding a flagged character, increasing
 * The text comes back as the same object when no character is replaced.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAPPED 1
#define FLAGGED 2
#define BMP 0x10000

#if defined(__GNUC__) || defined(__clang__)
#define INLINE static inline __attribute__((always_inline))
#define NOINLINE static __attribute__((noinline))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define INLINE static inline
#define NOINLINE static
#define LIKELY(x) (x)
#endif

typedef struct {
    const unsigned char *kinds;  /* the tables, as in the header */
    PyObject *maps, *astral_maps, *astral_flags;
    Py_UCS4 sep;                 /* (Py_UCS4)-1 for no separator */
} Tables;

/* What happens to an astral c: MAPPED and/or FLAGGED, and its replacement (borrowed) when MAPPED. -1 on error. */
NOINLINE int
look_up_astral(const Tables *t, Py_UCS4 c, PyObject **replacement)
{
    PyObject *key = PyLong_FromUnsignedLong(c);
    if (key == NULL)
        return -1;
    *replacement = PyDict_GetItemWithError(t->astral_maps, key);
    int flagged = *replacement == NULL && PyErr_Occurred() ? -1 : PySet_Contains(t->astral_flags, key);
    Py_DECREF(key);
    if (flagged < 0)
        return -1;
    return (*replacement != NULL ? MAPPED : 0) | (flagged ? FLAGGED : 0);
}

/* What happens to c: MAPPED and/or FLAGGED, and its replacement (borrowed) when MAPPED. -1 on error. (The tables
 * come apart from t so that the caller can keep them in registers.) */
INLINE int
look_up(const unsigned char *kinds, PyObject *maps, const Tables *t, Py_UCS4 c, PyObject **replacement)
{
    if (!LIKELY(c < BMP))
        return look_up_astral(t, c, replacement);
    int what = (kinds[c >> 2] >> ((c & 3) * 2)) & 3;
    *replacement = (what & MAPPED) ? PyTuple_GET_ITEM(maps, c) : NULL;
    return what;
}

NOINLINE int
append_index(PyObject *list, Py_ssize_t index)
{
    PyObject *number = PyLong_FromSsize_t(index);
    int status = number == NULL ? -1 : PyList_Append(list, number);
    Py_XDECREF(number);
    return status;
}

NOINLINE int
not_a_str(Py_UCS4 c)
{
    char message[80];
    snprintf(message, sizeof message, "chars: U+%04X is mapped but maps holds no str for it", (unsigned)c);
    PyErr_SetString(PyExc_TypeError, message);
    return -1;
}

/* The result, as UCS4 (str's own constructor then picks the narrowest kind), and what the scan found. */
typedef struct {
    Py_UCS4 *data, *end, *at;  /* the buffer, its end, the next character to write */
    Py_ssize_t replaced, dropped;  /* characters replaced; spaces left out (collapse) */
} Out;

/* Room for `needed` more characters; -1 (MemoryError) if there is none. */
NOINLINE int
grow(Out *out, Py_ssize_t needed)
{
    Py_ssize_t used = out->at - out->data, cap = used + needed + (used + needed) / 4 + 16;
    if ((size_t)cap > PY_SSIZE_T_MAX / sizeof(Py_UCS4)) {
        PyErr_NoMemory();
        return -1;
    }
    Py_UCS4 *data = PyMem_Realloc(out->data, (size_t)cap * sizeof(Py_UCS4));
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->data = data, out->at = data + used, out->end = data + cap;
    return 0;
}

/* One pass over the text: writes the result to out and appends the flagged texts to `flagged`; with collapse, runs
 * of spaces in the result become one and the spaces at the ends of every text go. `kind` and `collapse` are
 * constants where this is inlined, so that each case gets its own loop; the tables and the write position live in
 * local variables during the loop (through a pointer, the compiler would read them again for every character). */
INLINE int
scan(int kind, int collapse, const void *data, Py_ssize_t n, const Tables *t, PyObject *flagged, Out *out)
{
    const unsigned char *kinds = t->kinds;
    PyObject *maps = t->maps;
    Py_UCS4 sep = t->sep, *at = out->at;
    Py_ssize_t index = 0, last_flagged = -1, dropped = 0;
    int at_start = 1, space = 0;  /* collapse: at the start of a text; a space is owed before the next character */

/* one character r of the result */
#define PUT(r)                                                                  \
    do {                                                                        \
        Py_UCS4 r_ = (r);                                                       \
        if (collapse) {                                                         \
            if (r_ == ' ') {                                                    \
                dropped++; /* given back below if the space stays */            \
                space = !at_start;                                              \
                break;                                                          \
            }                                                                   \
            if (space && r_ != sep)                                             \
                *at++ = ' ', dropped--;                                         \
            space = 0, at_start = r_ == sep;                                    \
        }                                                                       \
        *at++ = r_;                                                             \
    } while (0)

    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        PyObject *replacement;
        int what = look_up(kinds, maps, t, c, &replacement);
        if (LIKELY(what == 0)) {  /* most characters: copied */
            index += c == sep;
            PUT(c);
            continue;
        }
        if (what < 0)
            return -1;
        if (what & FLAGGED && index != last_flagged) {
            if (append_index(flagged, index) < 0)
                return -1;
            last_flagged = index;
        }
        if (!(what & MAPPED)) {
            PUT(c);
            continue;
        }
        if (!PyUnicode_Check(replacement))
            return not_a_str(c);
        Py_ssize_t m = PyUnicode_GET_LENGTH(replacement);
        if (m > 1 && out->end - at < m + (n - i - 1)) {  /* (one slot per character was reserved) */
            out->at = at;
            if (grow(out, m + (n - i - 1)) < 0)
                return -1;
            at = out->at;
        }
        for (Py_ssize_t k = 0; k < m; k++)
            PUT(PyUnicode_READ_CHAR(replacement, k));
        out->replaced++;
    }
#undef PUT
    out->at = at, out->dropped = dropped;
    return 0;
}

static PyObject *
chars(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text, *sep;
    Py_buffer kinds;
    Tables t;
    int collapse = 0;
    if (!PyArg_ParseTuple(args, "UUy*O!O!O!|p:chars", &text, &sep, &kinds, &PyTuple_Type, &t.maps, &PyDict_Type,
                          &t.astral_maps, &PyFrozenSet_Type, &t.astral_flags, &collapse))
        return NULL;
    PyObject *result = NULL, *flagged = NULL, *new_text = NULL;
    Out out = {NULL, NULL, NULL, 0, 0};
    if (kinds.len != BMP / 4 || PyTuple_GET_SIZE(t.maps) != BMP) {
        PyErr_SetString(PyExc_ValueError, "chars: kinds must have 16384 bytes and maps 65536 entries");
        goto done;
    }
    if (PyUnicode_GET_LENGTH(sep) > 1 || (PyUnicode_GET_LENGTH(sep) == 1 && PyUnicode_READ_CHAR(sep, 0) == ' ')) {
        PyErr_SetString(PyExc_ValueError, "chars: the separator is one character other than a space, or empty");
        goto done;
    }
    t.kinds = kinds.buf;
    t.sep = PyUnicode_GET_LENGTH(sep) ? PyUnicode_READ_CHAR(sep, 0) : (Py_UCS4)-1;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if ((flagged = PyList_New(0)) == NULL || grow(&out, n + 1) < 0)
        goto done;
    int status;
#define SCAN(KIND) (collapse ? scan(KIND, 1, data, n, &t, flagged, &out) : scan(KIND, 0, data, n, &t, flagged, &out))
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        status = SCAN(PyUnicode_1BYTE_KIND);
        break;
    case PyUnicode_2BYTE_KIND:
        status = SCAN(PyUnicode_2BYTE_KIND);
        break;
    default:
        status = SCAN(PyUnicode_4BYTE_KIND);
    }
#undef SCAN
    if (status < 0)
        goto done;
    if (out.replaced || out.dropped)
        new_text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out.data, out.at - out.data);
    else {
        Py_INCREF(text);
        new_text = text;
    }
    if (new_text != NULL)
        result = PyTuple_Pack(2, new_text, flagged);

done:
    PyMem_Free(out.data);
    Py_XDECREF(new_text);
    Py_XDECREF(flagged);
    PyBuffer_Release(&kinds);
    return result;
}

static PyMethodDef methods[] = {
    {"chars", chars, METH_VARARGS,
     "chars(text, sep, kinds, maps, astral_maps, astral_flags, collapse=False) -> (text, flagged): "
     "characters mapped by tables, for toolkit.cleaning (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "toolkit._cleaning_scan",
    "The character passes of toolkit.cleaning compiled; toolkit.cleaning falls back to a regular expression and "
    "str.replace, with the same results, when this module is not built.",
    0, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cleaning_scan(void)
{
    return PyModule_Create(&module);
}
