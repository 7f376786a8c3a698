/* Steps 1 and 2 of toolkit.cleaning (characters, Latin lower case) in C: a scan of the string that finds the
 * flagged texts and the size of the result, and, if a character is replaced, a second one that writes it.
 *
 * toolkit/cleaning.py builds the tables from the options and calls chars() on a slice of texts joined by a
 * separator; without this module it runs the same tables through one regular expression (_Plan.early_re), with the
 * same results (tests/test_cleaning_properties.py compares the two). Built by setup.py when a C compiler is there.
 *
 * chars(text, sep, kinds, maps, astral_maps, astral_flags) -> (new text, flagged)
 *   kinds        bytes of 16384, two bits per BMP code point c, at bits 2 * (c % 4) of byte c / 4: bit 1 = replaced
 *                by maps[c], bit 2 = flagged (packed, so that the table stays in the CPU's first-level cache)
 *   maps         tuple of 65536: the replacement str of each BMP code point whose bit 1 is set (else None)
 *   astral_maps  dict {code point: str} of replaced astral code points
 *   astral_flags frozenset of flagged astral code points
 *   sep          the separator of the joined texts ("" for one text)
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
#else
#define INLINE static inline
#define NOINLINE static
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
    if (c >= BMP)
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

/* The result so far: its length, widest character and number of replaced characters; the text index. */
typedef struct {
    Py_ssize_t length, replaced, index, last_flagged;
    Py_UCS4 widest;
} State;

/* One pass over the text: counts the result and appends the flagged texts to `flagged` (out == NULL), or writes the
 * result into out. `kind` and whether out is NULL are constants where this is inlined, so that each case gets its
 * own loop; the state and tables live in local variables during the loop (through a pointer, every write to out
 * could change them, and the compiler would read them again for every character). */
INLINE int
scan(int kind, const void *data, Py_ssize_t n, const Tables *t, PyObject *flagged, State *st, int out_kind,
     void *out)
{
    Py_ssize_t length = st->length, replaced = st->replaced, index = st->index, last_flagged = st->last_flagged;
    Py_UCS4 widest = st->widest, sep = t->sep;
    const unsigned char *kinds = t->kinds;
    PyObject *maps = t->maps;
    int status = 0;

    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        PyObject *replacement;
        int what = look_up(kinds, maps, t, c, &replacement);
        if (what < 0) {
            status = -1;
            break;
        }
        index += c == sep;
        if (what & FLAGGED && out == NULL && index != last_flagged) {
            if (append_index(flagged, index) < 0) {
                status = -1;
                break;
            }
            last_flagged = index;
        }
        if (what & MAPPED) {
            if (out == NULL && !PyUnicode_Check(replacement)) {  /* (the writing pass reads only what was checked) */
                status = not_a_str(c);
                break;
            }
            Py_ssize_t m = PyUnicode_GET_LENGTH(replacement);
            for (Py_ssize_t k = 0; k < m; k++) {
                Py_UCS4 r = PyUnicode_READ_CHAR(replacement, k);
                if (out)
                    PyUnicode_WRITE(out_kind, out, length, r);
                length++;
                widest = r > widest ? r : widest;
            }
            replaced++;
        }
        else {
            if (out)
                PyUnicode_WRITE(out_kind, out, length, c);
            length++;
            widest = c > widest ? c : widest;
        }
    }
    st->length = length, st->replaced = replaced, st->index = index, st->last_flagged = last_flagged;
    st->widest = widest;
    return status;
}

/* scan() with a constant argument for the kind of the text */
static int
scan_text(int kind, const void *data, Py_ssize_t n, const Tables *t, PyObject *flagged, State *st, PyObject *out)
{
    int out_kind = out ? PyUnicode_KIND(out) : 0;
    void *out_data = out ? PyUnicode_DATA(out) : NULL;
#define SCAN(KIND) \
    (out ? scan(KIND, data, n, t, flagged, st, out_kind, out_data) : scan(KIND, data, n, t, flagged, st, 0, NULL))
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        return SCAN(PyUnicode_1BYTE_KIND);
    case PyUnicode_2BYTE_KIND:
        return SCAN(PyUnicode_2BYTE_KIND);
    default:
        return SCAN(PyUnicode_4BYTE_KIND);
    }
#undef SCAN
}

static PyObject *
chars(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text, *sep;
    Py_buffer kinds;
    Tables t;
    if (!PyArg_ParseTuple(args, "UUy*O!O!O!:chars", &text, &sep, &kinds, &PyTuple_Type, &t.maps, &PyDict_Type,
                          &t.astral_maps, &PyFrozenSet_Type, &t.astral_flags))
        return NULL;
    PyObject *result = NULL, *flagged = NULL, *new_text = NULL;
    if (kinds.len != BMP / 4 || PyTuple_GET_SIZE(t.maps) != BMP) {
        PyErr_SetString(PyExc_ValueError, "chars: kinds must have 16384 bytes and maps 65536 entries");
        goto done;
    }
    if (PyUnicode_GET_LENGTH(sep) > 1) {
        PyErr_SetString(PyExc_ValueError, "chars: the separator is one character or empty");
        goto done;
    }
    t.kinds = kinds.buf;
    t.sep = PyUnicode_GET_LENGTH(sep) ? PyUnicode_READ_CHAR(sep, 0) : (Py_UCS4)-1;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if ((flagged = PyList_New(0)) == NULL)
        goto done;
    State st = {0, 0, 0, -1, 0};
    if (scan_text(kind, data, n, &t, flagged, &st, NULL) < 0)
        goto done;
    if (!st.replaced) {
        Py_INCREF(text);
        new_text = text;
    }
    else {  /* in the narrowest kind that holds the result, as str requires */
        if ((new_text = PyUnicode_New(st.length, st.widest)) == NULL)
            goto done;
        State again = {0, 0, 0, -1, 0};
        if (scan_text(kind, data, n, &t, flagged, &again, new_text) < 0)
            goto done;
    }
    result = PyTuple_Pack(2, new_text, flagged);

done:
    Py_XDECREF(new_text);
    Py_XDECREF(flagged);
    PyBuffer_Release(&kinds);
    return result;
}

static PyMethodDef methods[] = {
    {"chars", chars, METH_VARARGS,
     "chars(text, sep, kinds, maps, astral_maps, astral_flags) -> (text, flagged): steps 1 and 2 of "
     "toolkit.cleaning (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "toolkit._cleaning_scan",
    "Steps 1 and 2 of toolkit.cleaning (characters, Latin lower case) compiled; toolkit.cleaning falls back to a "
    "regular expression with the same results when this module is not built.",
    0, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cleaning_scan(void)
{
    return PyModule_Create(&module);
}
