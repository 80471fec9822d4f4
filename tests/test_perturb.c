/* Tests of engine/perturb on a tiny model built from a seed.  Arenas are
 * compared with memcmp, so "restored" always means "the same bits", signed
 * zeros and NaN payloads included; expected values of the ops are computed
 * here from the formulas in perturb.h. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "paramscope/model.h"
#include "paramscope/perturb.h"
#include "paramscope/rng.h"

#define assert_near(a, b, tol)                                               \
    do {                                                                     \
        double a_ = (a), b_ = (b), t_ = (tol);                               \
        if (!(fabs(a_ - b_) <= t_))                                          \
            fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #a, a_,    \
                     b_, t_);                                                \
    } while (0)

/* n_layer 2, n_head 2, n_embd 8 (head size 4), n_ctx 8, vocab 11. */
static const ps_config tiny = {2, 2, 8, 8, 11};

typedef struct fixture {
    ps_model *m;
    ps_perturb *j;
    float *orig;              /* [n_floats] the arena after init_random */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ps_error err = {0};
    if (!f || ps_model_init(&f->m, &tiny, &err) != PS_OK)
        return -1;
    ps_model_init_random(f->m, 20240611);
    /* Biases and LayerNorm parameters start as 0 and 1: give them distinct
     * values so that a write to the wrong element shows. */
    ps_rng r;
    ps_rng_seed(&r, 99);
    for (int i = 0; i < f->m->n_params; i++) {
        ps_param *p = &f->m->params[i];
        if (p->is_bias)
            for (size_t k = 0; k < p->numel; k++)
                p->data[k] += 0.1f * ps_rng_normal(&r);
    }
    if (ps_perturb_init(&f->j, f->m, &err) != PS_OK)
        return -1;
    f->orig = malloc(f->m->n_floats * sizeof(float));
    memcpy(f->orig, f->m->w, f->m->n_floats * sizeof(float));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ps_perturb_free(f->j);
    ps_model_free(f->m);
    free(f->orig);
    free(f);
    return 0;
}

static float *snapshot(const ps_model *m)
{
    float *s = malloc(m->n_floats * sizeof *s);
    memcpy(s, m->w, m->n_floats * sizeof *s);
    return s;
}

/* Fails naming the first parameter and value whose bits differ. */
static void assert_arena_is(const ps_model *m, const float *want)
{
    if (memcmp(m->w, want, m->n_floats * sizeof(float)) == 0)
        return;
    for (size_t i = 0; i < m->n_floats; i++) {
        if (memcmp(&m->w[i], &want[i], sizeof(float)) == 0)
            continue;
        const char *name = "?";
        for (int k = 0; k < m->n_params; k++)
            if (i >= m->params[k].offset && i < m->params[k].offset + m->params[k].numel)
                name = m->params[k].name;
        uint32_t a, b;
        memcpy(&a, &m->w[i], 4);
        memcpy(&b, &want[i], 4);
        fail_msg("arena differs at %zu (%s): %08x, expected %08x", i, name, a, b);
    }
}

static uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static float from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static ps_param *param(fixture *f, const char *name)
{
    ps_param *p = ps_model_find(f->m, name);
    assert_non_null(p);
    return p;
}

/* Number of arena positions whose bits differ from orig. */
static size_t count_arena_changes(const ps_model *m, const float *orig)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_floats; i++)
        n += memcmp(&m->w[i], &orig[i], sizeof(float)) != 0;
    return n;
}

/* ---- the bit-exact random walk ---- */

static float special_value(ps_rng *r)
{
    static const uint32_t specials[] = {
        0x00000000u, 0x80000000u,  /* +0, -0 */
        0x7fc00000u, 0x7fc12345u,  /* NaN, NaN with a payload */
        0xffc00001u,               /* negative NaN with a payload */
        0x7f800000u, 0xff800000u,  /* +-Inf */
        0x7149f2cau,               /* 1e30 */
        0x80000007u,               /* a negative denormal */
    };
    uint32_t n = sizeof specials / sizeof specials[0];
    if (ps_rng_uniform(r) < 0.4f)
        return from_bits(specials[ps_rng_below(r, n)]);
    return ps_rng_normal(r);
}

static size_t rand_start(ps_rng *r, size_t n)
{
    return ps_rng_below(r, (uint32_t)n);
}

static size_t rand_len(ps_rng *r, size_t start, size_t n)
{
    return 1 + ps_rng_below(r, (uint32_t)(n - start));
}

/* A random window of p: element, rows, columns, block, whole; 1-D
 * parameters sometimes in their n x 1 form. */
static ps_region random_window(ps_model *m, ps_rng *r)
{
    ps_param *p = &m->params[ps_rng_below(r, (uint32_t)m->n_params)];
    size_t R = p->ndim == 1 ? 1 : (size_t)p->shape[0];
    size_t C = p->ndim == 1 ? p->numel : (size_t)p->shape[1];
    size_t r0 = rand_start(r, R), c0 = rand_start(r, C);
    size_t nr = rand_len(r, r0, R), nc = rand_len(r, c0, C);
    switch (ps_rng_below(r, 6)) {
    case 0:
        return ps_region_whole(p);
    case 1:
        return ps_region_element(p, r0, c0);
    case 2:
        return ps_region_rows(p, r0, nr);
    case 3:
        return ps_region_cols(p, c0, nc);
    case 4:
        if (p->ndim == 1) {
            ps_region col = {p, c0, nc, 0, 1, 1};
            return col;
        }
        return ps_region_block(p, r0, nr, c0, nc);
    default:
        return ps_region_block(p, r0, nr, c0, nc);
    }
}

/* Fills out[4] with the regions of one random edit; returns how many. */
static int random_regions(fixture *f, ps_rng *r, ps_region *out)
{
    ps_error err = {0};
    int n = 0;
    switch (ps_rng_below(r, 5)) {
    case 0: {
        int layer = (int)ps_rng_below(r, 2), head = (int)ps_rng_below(r, 2);
        ps_head_part part = (ps_head_part)ps_rng_below(r, 4);
        assert_int_equal(ps_region_head(f->m, layer, head, part, out, &n, &err), PS_OK);
        if (n == 2 && ps_rng_below(r, 2))
            n = 1;
        return n;
    }
    case 1:
        assert_int_equal(ps_region_neuron(f->m, (int)ps_rng_below(r, 2),
                                          (int)ps_rng_below(r, 32), out, &err), PS_OK);
        return 3;
    case 2:
        /* several windows, which may overlap */
        n = 2 + (int)ps_rng_below(r, 3);
        for (int k = 0; k < n; k++)
            out[k] = random_window(f->m, r);
        return n;
    default:
        out[0] = random_window(f->m, r);
        return 1;
    }
}

static void random_edit(fixture *f, ps_rng *r, int *ops_seen)
{
    ps_region regs[4];
    int n = random_regions(f, r, regs);
    size_t nv = 0;
    for (int k = 0; k < n; k++)
        nv += ps_region_numel(&regs[k]);
    ps_edit e = {.op = (ps_perturb_op)ps_rng_below(r, 8)};
    float *vals = NULL;
    switch (e.op) {
    case PS_PERTURB_OP_SET:
    case PS_PERTURB_OP_ADD:
        e.value = special_value(r);
        break;
    case PS_PERTURB_OP_SCALE:
        e.value = ps_rng_below(r, 3) == 0 ? 0.0f : special_value(r);
        break;
    case PS_PERTURB_OP_NOISE:
        e.value = ps_rng_uniform(r);
        e.seed = ps_rng_u64(r);
        break;
    case PS_PERTURB_OP_PRUNE:
        e.percent = 100.0 * ps_rng_uniform(r);
        break;
    case PS_PERTURB_OP_QUANTIZE:
        e.bits = 2 + (int)ps_rng_below(r, 15);
        break;
    case PS_PERTURB_OP_ASSIGN:
        vals = malloc(nv * sizeof *vals);
        for (size_t i = 0; i < nv; i++)
            vals[i] = special_value(r);
        e.values = vals;
        break;
    default:
        break;
    }
    ps_perturb_result res;
    ps_error err = {0};
    uint64_t gen = ps_perturb_generation(f->j);
    int rc = ps_perturb_edit(f->j, regs, n, &e, &res, &err);
    if (rc != PS_OK)
        fail_msg("edit %s: %s", ps_perturb_op_name(e.op), err.msg);
    assert_int_equal(res.n_values, nv);
    assert_int_equal(res.recorded, 1);
    assert_true(ps_perturb_generation(f->j) == gen + 1);
    ops_seen[e.op]++;
    free(vals);
}

static void scan_specials(const ps_model *m, int *seen_nan, int *seen_negzero)
{
    for (size_t i = 0; i < m->n_floats; i++) {
        *seen_nan |= isnan(m->w[i]);
        *seen_negzero |= bits_of(m->w[i]) == 0x80000000u;
    }
}

static void test_random_edits_bit_exact(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_rng r;
    ps_rng_seed(&r, 7);
    int ops_seen[8] = {0}, undos = 0, redos = 0, seen_nan = 0, seen_negzero = 0;
    for (int step = 0; step < 400; step++) {
        float u = ps_rng_uniform(&r);
        if (u < 0.10f && ps_perturb_cursor(f->j) > 0) {
            /* a few undos in a row, sometimes followed by some redos */
            int k = 1 + (int)ps_rng_below(&r, 4);
            for (int i = 0; i < k && ps_perturb_cursor(f->j) > 0; i++, undos++)
                assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
            k = (int)ps_rng_below(&r, 3);
            for (int i = 0; i < k && ps_perturb_cursor(f->j) < ps_perturb_count(f->j); i++, redos++)
                assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
        } else if (u < 0.22f && ps_perturb_cursor(f->j) > 0) {
            /* undo then redo gives back the very same bits */
            float *before = snapshot(f->m);
            assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
            assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
            assert_arena_is(f->m, before);
            free(before);
        } else {
            random_edit(f, &r, ops_seen);
        }
        scan_specials(f->m, &seen_nan, &seen_negzero);
    }
    /* the walk exercised what it is meant to */
    for (int op = 0; op < 8; op++)
        assert_true(ops_seen[op] >= 10);
    assert_true(undos >= 40 && redos >= 20);
    assert_true(seen_nan && seen_negzero);
    assert_true(ps_perturb_dropped(f->j) == 0);

    float *after = snapshot(f->m);
    int depth = ps_perturb_cursor(f->j);
    assert_true(depth >= 200);
    while (ps_perturb_cursor(f->j) > 0)
        assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, f->orig);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_ERR_STATE);

    for (int i = 0; i < depth; i++)
        assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_arena_is(f->m, after);

    ps_perturb_result res;
    assert_int_equal(ps_perturb_reset_all(f->j, &res, &err), PS_OK);
    assert_int_equal(res.recorded, 1);
    assert_arena_is(f->m, f->orig);
    int n_diff = -1;
    ps_param_diff diffs[64];
    assert_int_equal(ps_perturb_diff(f->j, diffs, 64, &n_diff, &err), PS_OK);
    assert_int_equal(n_diff, 0);

    /* reset is an entry like any other */
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, after);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_arena_is(f->m, f->orig);
    free(after);
}

/* ---- exact bits of single edits ---- */

static void test_signed_zero_and_nan_payload(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *p = param(f, "h.1.ln_2.weight");
    ps_region e0 = ps_region_index(p, 3);

    float negzero = from_bits(0x80000000u);
    assert_int_equal(ps_perturb_assign(f->j, &e0, 1, &negzero, &res, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x80000000u);
    /* -0 == +0 as floats, but the bits differ: that is a change */
    assert_int_equal(ps_perturb_set(f->j, &e0, 1, 0.0f, &res, &err), PS_OK);
    assert_int_equal(res.n_changed, 1);
    assert_int_equal(bits_of(p->data[3]), 0x00000000u);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x80000000u);
    /* the same through a computed op: -0 * -1 is +0, a change; redo redoes it */
    assert_int_equal(ps_perturb_scale(f->j, &e0, 1, -1.0f, &res, &err), PS_OK);
    assert_int_equal(res.n_changed, 1);
    assert_int_equal(bits_of(p->data[3]), 0x00000000u);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x80000000u);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x00000000u);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);

    float nan_payload = from_bits(0x7fc12345u);
    assert_int_equal(ps_perturb_assign(f->j, &e0, 1, &nan_payload, &res, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x7fc12345u);
    assert_int_equal(ps_perturb_set(f->j, &e0, 1, from_bits(0x7fc00001u), &res, &err), PS_OK);
    assert_int_equal(res.n_changed, 1);    /* NaN != NaN, but the bits decide */
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x7fc12345u);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x7fc00001u);

    /* scale by 0: Inf becomes NaN, and undo brings back Inf */
    float inf = INFINITY;
    assert_int_equal(ps_perturb_assign(f->j, &e0, 1, &inf, &res, &err), PS_OK);
    assert_int_equal(ps_perturb_scale(f->j, &e0, 1, 0.0f, &res, &err), PS_OK);
    assert_true(isnan(p->data[3]));
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(bits_of(p->data[3]), 0x7f800000u);

    /* an edit that changes no bits is still an entry, with nothing changed */
    int count = ps_perturb_count(f->j);
    assert_int_equal(ps_perturb_scale(f->j, &e0, 1, 1.0f, &res, &err), PS_OK);
    assert_int_equal(res.n_changed, 0);
    assert_int_equal(ps_perturb_count(f->j), count);   /* the undone scale was dropped */
}

/* ---- named views and region shapes ---- */

static void test_head_and_neuron_regions(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_region regs[3];
    int n = 0;

    /* head 1 of layer 0, K part: columns C + 4 .. C + 7 and bias 12..15 */
    assert_int_equal(ps_region_head(f->m, 0, 1, PS_HEAD_PART_K, regs, &n, &err), PS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ps_perturb_set(f->j, regs, n, 7.0f, &res, &err), PS_OK);
    assert_int_equal(res.n_values, 8 * 4 + 4);
    ps_param *w = param(f, "h.0.attn.c_attn.weight");
    ps_param *b = param(f, "h.0.attn.c_attn.bias");
    for (size_t i = 0; i < 8; i++)
        for (size_t c = 0; c < 24; c++) {
            int inside = c >= 12 && c < 16;
            float want = inside ? 7.0f : f->orig[w->offset + i * 24 + c];
            assert_int_equal(bits_of(w->data[i * 24 + c]), bits_of(want));
        }
    for (size_t c = 0; c < 24; c++) {
        float want = c >= 12 && c < 16 ? 7.0f : f->orig[b->offset + c];
        assert_int_equal(bits_of(b->data[c]), bits_of(want));
    }
    assert_int_equal(count_arena_changes(f->m, f->orig), 36);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 0, &info, &err), PS_OK);
    assert_string_equal(info.name,
        "set h.0.attn.c_attn.weight[:, 12:16] + h.0.attn.c_attn.bias[12:16] 7");
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, f->orig);

    /* O part: rows 4..7 of attn.c_proj.weight, one region */
    assert_int_equal(ps_region_head(f->m, 1, 1, PS_HEAD_PART_O, regs, &n, &err), PS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ps_perturb_zero(f->j, regs, n, &res, &err), PS_OK);
    ps_param *o = param(f, "h.1.attn.c_proj.weight");
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(bits_of(o->data[i]),
                         bits_of(i >= 32 ? 0.0f : f->orig[o->offset + i]));
    assert_int_equal(count_arena_changes(f->m, f->orig), 32);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);

    /* neuron 5 of layer 1: column 5 of c_fc, bias 5, row 5 of c_proj */
    assert_int_equal(ps_region_neuron(f->m, 1, 5, regs, &err), PS_OK);
    assert_int_equal(ps_perturb_scale(f->j, regs, 3, -2.0f, &res, &err), PS_OK);
    assert_int_equal(res.n_values, 8 + 1 + 8);
    ps_param *fc = param(f, "h.1.mlp.c_fc.weight");
    ps_param *fcb = param(f, "h.1.mlp.c_fc.bias");
    ps_param *pr = param(f, "h.1.mlp.c_proj.weight");
    for (size_t i = 0; i < 8; i++) {
        assert_true(fc->data[i * 32 + 5] == -2.0f * f->orig[fc->offset + i * 32 + 5]);
        assert_true(pr->data[5 * 8 + i] == -2.0f * f->orig[pr->offset + 5 * 8 + i]);
    }
    assert_true(fcb->data[5] == -2.0f * f->orig[fcb->offset + 5]);
    assert_int_equal(count_arena_changes(f->m, f->orig), 17);
    assert_int_equal(ps_perturb_entry_info(f->j, 0, &info, &err), PS_OK);
    assert_string_equal(info.name, "scale h.1.mlp.c_fc.weight[:, 5] + "
                        "h.1.mlp.c_fc.bias[5] + h.1.mlp.c_proj.weight[5] -2");

    assert_int_equal(ps_region_head(f->m, 2, 0, PS_HEAD_PART_Q, regs, &n, &err), PS_ERR_RANGE);
    assert_int_equal(ps_region_head(f->m, 0, 2, PS_HEAD_PART_Q, regs, &n, &err), PS_ERR_RANGE);
    assert_int_equal(ps_region_neuron(f->m, 0, 32, regs, &err), PS_ERR_RANGE);
}

static void test_region_forms_and_names(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *lb = param(f, "h.0.ln_1.bias");
    ps_param *cw = param(f, "h.0.mlp.c_fc.weight");
    char buf[PS_PERTURB_NAME_MAX];

    /* the n x 1 form of a 1-D parameter means the same values */
    ps_region col = {lb, 2, 3, 0, 1, 1};
    assert_int_equal(ps_region_check(&col, &err), PS_OK);
    ps_region_format(&col, buf, sizeof buf);
    assert_string_equal(buf, "h.0.ln_1.bias[2:5]");
    assert_int_equal(ps_perturb_set(f->j, &col, 1, 4.0f, &res, &err), PS_OK);
    for (size_t i = 0; i < 8; i++)
        assert_true(lb->data[i] == (i >= 2 && i < 5 ? 4.0f : f->orig[lb->offset + i]));

    ps_region whole = ps_region_whole(cw);
    assert_int_equal(ps_perturb_scale(f->j, &whole, 1, 0.0f, &res, &err), PS_OK);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 1, &info, &err), PS_OK);
    assert_string_equal(info.name, "scale h.0.mlp.c_fc.weight 0");
    assert_int_equal(info.n_values, 256);
    assert_int_equal(info.op, PS_PERTURB_OP_SCALE);
    assert_int_equal(info.applied, 1);

    ps_region el = ps_region_element(param(f, "h.0.attn.c_proj.weight"), 2, 3);
    float v = 1.5f;
    assert_int_equal(ps_perturb_assign(f->j, &el, 1, &v, &res, &err), PS_OK);
    assert_int_equal(ps_perturb_entry_info(f->j, 2, &info, &err), PS_OK);
    assert_string_equal(info.name, "assign h.0.attn.c_proj.weight[2, 3] = 1.5");

    ps_region rows = ps_region_rows(param(f, "wte.weight"), 3, 2);
    ps_region_format(&rows, buf, sizeof buf);
    assert_string_equal(buf, "wte.weight[3:5]");
    ps_region blk = ps_region_block(cw, 1, 3, 0, 32);
    ps_region_format(&blk, buf, sizeof buf);
    assert_string_equal(buf, "h.0.mlp.c_fc.weight[1:4]");
    ps_region idx = ps_region_index(cw, 37);   /* row 1, column 5 */
    assert_true(idx.row0 == 1 && idx.col0 == 5 && idx.rows == 1 && idx.cols == 1);

    ps_edit labelled = {.op = PS_PERTURB_OP_ADD, .value = 1.0f, .label = "nudge wte[3] +1"};
    assert_int_equal(ps_perturb_edit(f->j, &rows, 1, &labelled, &res, &err), PS_OK);
    assert_int_equal(ps_perturb_entry_info(f->j, 3, &info, &err), PS_OK);
    assert_string_equal(info.name, "nudge wte[3] +1");
    assert_int_equal(ps_perturb_entry_info(f->j, 4, &info, &err), PS_ERR_RANGE);
}

/* ---- prune ---- */

typedef struct keyed {
    float mag;
    size_t pos;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int xn = isnan(x->mag), yn = isnan(y->mag);
    if (xn != yn)
        return xn - yn;                       /* NaN last */
    if (!xn && x->mag != y->mag)
        return x->mag < y->mag ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The values of regions in region order, into out. */
static size_t gather_regions(const ps_region *regs, int n, float *out)
{
    size_t c = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < regs[k].rows; i++)
            for (size_t j = 0; j < regs[k].cols; j++)
                out[c++] = regs[k].param->data[(regs[k].row0 + i) * regs[k].ld +
                                               regs[k].col0 + j];
    return c;
}

/* Prunes percent of the regions' current values, checks against a sort done
 * here that exactly the k smallest (ties: earliest) became +0, undoes. */
static void check_prune(fixture *f, const ps_region *regs, int n_regs,
                        double percent)
{
    ps_error err = {0};
    ps_perturb_result res;
    size_t n = 0;
    for (int k = 0; k < n_regs; k++)
        n += ps_region_numel(&regs[k]);
    float *vals = malloc(n * sizeof *vals), *now = malloc(n * sizeof *now);
    keyed *order = malloc(n * sizeof *order);
    int *zeroed = calloc(n, sizeof *zeroed);
    gather_regions(regs, n_regs, vals);
    for (size_t i = 0; i < n; i++)
        order[i] = (keyed){fabsf(vals[i]), i};
    qsort(order, n, sizeof *order, cmp_keyed);
    size_t k = (size_t)floor((double)n * percent / 100.0);
    for (size_t i = 0; i < k; i++)
        zeroed[order[i].pos] = 1;

    assert_int_equal(ps_perturb_prune(f->j, regs, n_regs, percent, &res, &err), PS_OK);
    assert_int_equal(res.n_zeroed, k);
    assert_int_equal(res.n_values, n);
    gather_regions(regs, n_regs, now);
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t want = zeroed[i] ? 0u : bits_of(vals[i]);
        if (bits_of(now[i]) != want)
            fail_msg("prune %g%% of %zu: value %zu is %08x, expected %08x",
                     percent, n, i, bits_of(now[i]), want);
        changed += want != bits_of(vals[i]);
    }
    assert_int_equal(res.n_changed, changed);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    gather_regions(regs, n_regs, now);
    assert_memory_equal(now, vals, n * sizeof *now);
    free(vals);
    free(now);
    free(order);
    free(zeroed);
}

static void test_prune_smallest(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *w = param(f, "h.1.attn.c_attn.weight");
    ps_param *bias = param(f, "h.1.attn.c_attn.bias");
    /* the V block of head 0 (strided) and the whole bias: 32 + 24 values */
    ps_region regs[2] = {ps_region_cols(w, 16, 4), ps_region_whole(bias)};
    float vals[56];
    /* many ties in magnitude, of both signs, a -0, a +0 and a NaN */
    for (size_t i = 0; i < 56; i++)
        vals[i] = (float)((i * 7) % 10) * 0.25f * (i % 3 == 0 ? -1.0f : 1.0f);
    vals[4] = from_bits(0x80000000u);
    vals[9] = NAN;
    assert_int_equal(ps_perturb_assign(f->j, regs, 2, vals, &res, &err), PS_OK);
    const double percents[] = {30.0, 50.0, 12.5, 0.0, 100.0, 99.0};
    for (size_t t = 0; t < sizeof percents / sizeof percents[0]; t++)
        check_prune(f, regs, 2, percents[t]);
    /* 30% of 56 is 16.8, so 16: the 7 zeros, the 6 values of magnitude 0.25
     * and 3 of the 5 of magnitude 0.5, the earliest: positions 6, 16, 26 (in
     * the V block) but not 36, 46 (bias 4 and 14) */
    assert_int_equal(ps_perturb_prune(f->j, regs, 2, 30.0, &res, &err), PS_OK);
    assert_int_equal(res.n_zeroed, 16);
    assert_true(w->data[1 * 24 + 18] == 0.0f && w->data[4 * 24 + 16] == 0.0f &&
                w->data[6 * 24 + 18] == 0.0f);
    assert_true(bias->data[4] == -0.5f && bias->data[14] == 0.5f);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);

    /* normal values over two tensors (far apart in magnitude bits) */
    ps_region big[2] = {ps_region_whole(param(f, "h.0.mlp.c_fc.weight")),
                        ps_region_rows(param(f, "wte.weight"), 0, 6)};
    check_prune(f, big, 2, 37.0);
    check_prune(f, big, 2, 1.0);
    /* values that differ only in their low bits, shuffled, with repeats */
    ps_region fcp = ps_region_whole(param(f, "h.0.mlp.c_proj.weight"));
    float close[256];
    for (uint32_t i = 0; i < 256; i++)
        close[i] = from_bits(((i * 97) % 200) | (i & 1 ? 0xbf800000u : 0x3f800000u));
    assert_int_equal(ps_perturb_assign(f->j, &fcp, 1, close, &res, &err), PS_OK);
    check_prune(f, &fcp, 1, 45.0);
    check_prune(f, &fcp, 1, 80.5);

    assert_int_equal(ps_perturb_prune(f->j, regs, 2, 100.5, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_prune(f->j, regs, 2, NAN, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_prune(f->j, regs, 2, -1.0, &res, &err), PS_ERR_RANGE);
}

/* ---- quantize ---- */

static void test_quantize_errors(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_region regs[3];
    assert_int_equal(ps_region_neuron(f->m, 0, 9, regs, &err), PS_OK);
    const size_t sizes[3] = {8, 1, 8};
    float vals[17];
    ps_rng r;
    ps_rng_seed(&r, 5);
    for (size_t i = 0; i < 17; i++)
        vals[i] = ps_rng_normal(&r);
    vals[3] = INFINITY;           /* left alone, out of max and errors */
    assert_int_equal(ps_perturb_assign(f->j, regs, 3, vals, &res, &err), PS_OK);

    const int bit_widths[] = {2, 4, 8, 16};
    for (size_t t = 0; t < 4; t++) {
        int bits = bit_widths[t];
        double qmax = (double)((1 << (bits - 1)) - 1);
        float want[17];
        double sum = 0.0, max = 0.0;
        size_t nf = 0, off = 0;
        for (int k = 0; k < 3; k++) {
            double m = 0.0;
            for (size_t i = off; i < off + sizes[k]; i++)
                if (isfinite(vals[i]))
                    m = fmax(m, fabs(vals[i]));
            double s = m / qmax;
            for (size_t i = off; i < off + sizes[k]; i++) {
                want[i] = vals[i];
                if (!isfinite(vals[i]))
                    continue;
                double q = fmin(qmax, fmax(-qmax, round(vals[i] / s)));
                want[i] = (float)(q * s);
                double e = fabs((double)want[i] - vals[i]);
                sum += e;
                max = fmax(max, e);
                nf++;
            }
            off += sizes[k];
        }
        assert_int_equal(ps_perturb_quantize(f->j, regs, 3, bits, &res, &err), PS_OK);
        float now[17];
        gather_regions(regs, 3, now);
        for (size_t i = 0; i < 17; i++)
            assert_int_equal(bits_of(now[i]), bits_of(want[i]));
        assert_near(res.quant_mean_err, sum / (double)nf, 1e-15);
        assert_near(res.quant_max_err, max, 1e-15);
        assert_int_equal(res.quant_bytes, (17 * (size_t)bits + 7) / 8 + 3 * 4);
        /* the figures are those of a real loss: coarser is worse */
        if (bits == 2)
            assert_true(res.quant_max_err > 0.1);
        if (bits == 16)
            assert_true(res.quant_max_err < 1e-3 && res.quant_max_err > 0.0);
        assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    }
    /* ties are rounded away from zero: with 3 bits qmax is 3 and a region
     * whose max is 3 has s = 1, so 0.5, -1.5 and 2.5 are exact halves */
    float halves[8] = {3.0f, 0.5f, -1.5f, 2.5f, -0.5f, 1.25f, 0.0f, -3.0f};
    const float rounded[8] = {3.0f, 1.0f, -2.0f, 3.0f, -1.0f, 1.0f, 0.0f, -3.0f};
    ps_region row = ps_region_rows(param(f, "h.1.attn.c_proj.weight"), 6, 1);
    assert_int_equal(ps_perturb_assign(f->j, &row, 1, halves, &res, &err), PS_OK);
    assert_int_equal(ps_perturb_quantize(f->j, &row, 1, 3, &res, &err), PS_OK);
    for (size_t i = 0; i < 8; i++)
        assert_true(row.param->data[6 * 8 + i] == rounded[i]);
    assert_near(res.quant_max_err, 0.5, 0.0);
    assert_near(res.quant_mean_err, (0.5 + 0.5 + 0.5 + 0.5 + 0.25) / 8.0, 1e-15);
    assert_int_equal(res.quant_bytes, 3 + 4);

    /* the lone bias value is its own region: its max is itself, so it
     * survives exactly (q = qmax) */
    assert_int_equal(ps_perturb_quantize(f->j, regs, 3, 3, &res, &err), PS_OK);
    assert_true(regs[1].param->data[regs[1].col0] == vals[8]);

    float *before = snapshot(f->m);
    int count = ps_perturb_count(f->j);
    assert_int_equal(ps_perturb_quantize(f->j, regs, 3, 1, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_quantize(f->j, regs, 3, 17, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_count(f->j), count);
    assert_arena_is(f->m, before);
    free(before);
}

/* ---- noise ---- */

static void test_noise_reproducible(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *wte = param(f, "wte.weight");
    ps_region reg = ps_region_block(wte, 2, 4, 1, 5);   /* strided 4 x 5 */
    const float sigma = 0.1f;

    assert_int_equal(ps_perturb_noise(f->j, &reg, 1, sigma, 1234, &res, &err), PS_OK);
    assert_int_equal(res.n_changed, 20);
    ps_rng r;
    ps_rng_seed(&r, 1234);
    float first[20];
    for (size_t i = 0; i < 4; i++)
        for (size_t c = 0; c < 5; c++) {
            size_t at = (2 + i) * 8 + 1 + c;
            float d = sigma * ps_rng_normal(&r);
            float want = f->orig[wte->offset + at] + d;
            assert_int_equal(bits_of(wte->data[at]), bits_of(want));
            first[i * 5 + c] = wte->data[at];
        }
    assert_int_equal(count_arena_changes(f->m, f->orig), 20);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 0, &info, &err), PS_OK);
    assert_true(info.seed == 1234);
    assert_string_equal(info.name, "noise wte.weight[2:6, 1:6] 0.1 seed 1234");

    /* the same seed again gives the same bits; another seed does not */
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(ps_perturb_noise(f->j, &reg, 1, sigma, 1234, &res, &err), PS_OK);
    for (size_t i = 0; i < 4; i++)
        for (size_t c = 0; c < 5; c++)
            assert_int_equal(bits_of(wte->data[(2 + i) * 8 + 1 + c]), bits_of(first[i * 5 + c]));
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(ps_perturb_noise(f->j, &reg, 1, sigma, 1235, &res, &err), PS_OK);
    assert_true(wte->data[2 * 8 + 1] != first[0]);

    assert_int_equal(ps_perturb_noise(f->j, &reg, 1, -1.0f, 1, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_noise(f->j, &reg, 1, NAN, 1, &res, &err), PS_ERR_RANGE);
}

/* ---- reset, diff, baselines ---- */

static void test_reset_param_only(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *wte = param(f, "wte.weight");
    ps_param *lb = param(f, "h.0.ln_1.bias");
    ps_region a = ps_region_whole(wte), b = ps_region_whole(lb);
    assert_true(ps_perturb_baseline_bytes(f->j) == 0);
    assert_null(ps_perturb_baseline(f->j, wte));
    assert_int_equal(ps_perturb_scale(f->j, &a, 1, 2.0f, &res, &err), PS_OK);
    assert_int_equal(ps_perturb_add(f->j, &b, 1, 0.5f, &res, &err), PS_OK);
    /* lazy baselines: only the two edited parameters were copied */
    assert_true(ps_perturb_baseline_bytes(f->j) == (88 + 8) * sizeof(float));
    assert_memory_equal(ps_perturb_baseline(f->j, wte), f->orig + wte->offset, 88 * sizeof(float));
    float *edited = snapshot(f->m);

    uint64_t gen = ps_perturb_generation(f->j);
    assert_int_equal(ps_perturb_reset_param(f->j, wte, &res, &err), PS_OK);
    assert_int_equal(res.recorded, 1);
    assert_int_equal(res.n_values, 88);
    assert_true(ps_perturb_generation(f->j) == gen + 1);
    assert_memory_equal(wte->data, f->orig + wte->offset, 88 * sizeof(float));
    assert_memory_equal(lb->data, edited + lb->offset, 8 * sizeof(float));
    assert_int_equal(count_arena_changes(f->m, f->orig), 8);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 2, &info, &err), PS_OK);
    assert_string_equal(info.name, "reset wte.weight");
    assert_int_equal(info.op, PS_PERTURB_OP_RESET);

    /* resetting what is already at its baseline adds nothing */
    int count = ps_perturb_count(f->j);
    gen = ps_perturb_generation(f->j);
    assert_int_equal(ps_perturb_reset_param(f->j, wte, &res, &err), PS_OK);
    assert_int_equal(res.recorded, 0);
    assert_int_equal(ps_perturb_reset_param(f->j, param(f, "wpe.weight"), &res, &err), PS_OK);
    assert_int_equal(res.recorded, 0);
    assert_int_equal(ps_perturb_count(f->j), count);
    assert_true(ps_perturb_generation(f->j) == gen);

    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, edited);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_int_equal(count_arena_changes(f->m, f->orig), 8);
    free(edited);
}

static void test_diff_figures(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *pw = param(f, "h.1.attn.c_proj.weight");
    ps_param *lnf = param(f, "ln_f.bias");
    /* three changes in pw: -3, +0.25 and a NaN; one in ln_f.bias: +1 */
    size_t at[3] = {5, 17, 40};
    float nv[3] = {f->orig[pw->offset + 5] - 3.0f, f->orig[pw->offset + 17] + 0.25f, NAN};
    for (int i = 0; i < 3; i++) {
        ps_region e = ps_region_index(pw, at[i]);
        assert_int_equal(ps_perturb_assign(f->j, &e, 1, &nv[i], &res, &err), PS_OK);
    }
    ps_region e2 = ps_region_index(lnf, 2);
    assert_int_equal(ps_perturb_add(f->j, &e2, 1, 1.0f, &res, &err), PS_OK);
    /* an edit and its inverse leave a parameter at its baseline: no row */
    ps_region wpe_row = ps_region_rows(param(f, "wpe.weight"), 1, 1);
    assert_int_equal(ps_perturb_scale(f->j, &wpe_row, 1, -1.0f, &res, &err), PS_OK);
    assert_int_equal(ps_perturb_scale(f->j, &wpe_row, 1, -1.0f, &res, &err), PS_OK);

    ps_param_diff d[4];
    int n = 0;
    assert_int_equal(ps_perturb_diff(f->j, d, 4, &n, &err), PS_OK);
    assert_int_equal(n, 2);
    assert_ptr_equal(d[0].param, pw);          /* table order */
    assert_ptr_equal(d[1].param, lnf);
    assert_int_equal(d[0].n_changed, 3);
    assert_int_equal(d[0].n_nonfinite, 1);
    double d0 = (double)nv[0] - f->orig[pw->offset + 5];
    double d1 = (double)nv[1] - f->orig[pw->offset + 17];
    assert_near(d[0].l2, sqrt(d0 * d0 + d1 * d1), 1e-12);
    assert_near(d[0].max_abs, fmax(fabs(d0), fabs(d1)), 1e-12);
    assert_true(d[0].max_abs > 2.9);
    double dl = (double)(f->orig[lnf->offset + 2] + 1.0f) - f->orig[lnf->offset + 2];
    assert_int_equal(d[1].n_changed, 1);
    assert_near(d[1].l2, fabs(dl), 1e-12);
    assert_near(d[1].max_abs, fabs(dl), 1e-12);

    assert_int_equal(ps_perturb_diff(f->j, d, 1, &n, &err), PS_ERR_RANGE);
    assert_int_equal(n, 1);
}

static void test_capture_before_outside_change(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *wpe = param(f, "wpe.weight");

    /* training as an outside change: begin, write directly, commit */
    assert_int_equal(ps_perturb_begin(f->j, NULL, 0, "train 3 steps", &err), PS_OK);
    ps_region r = ps_region_whole(wpe);
    assert_int_equal(ps_perturb_set(f->j, &r, 1, 1.0f, &res, &err), PS_ERR_STATE);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_ERR_STATE);
    for (size_t i = 0; i < wpe->numel; i++)
        wpe->data[i] += 1.0f;
    assert_int_equal(ps_perturb_commit(f->j, &res, &err), PS_OK);
    assert_int_equal(res.recorded, 1);
    assert_int_equal(res.n_changed, wpe->numel);
    assert_int_equal(res.n_values, f->m->n_floats);
    float *trained = snapshot(f->m);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 0, &info, &err), PS_OK);
    assert_string_equal(info.name, "train 3 steps");
    assert_int_equal(info.op, PS_PERTURB_OP_EXTERNAL);

    /* begin took every baseline, so reset goes back before the training */
    assert_true(ps_perturb_baseline_bytes(f->j) == f->m->n_floats * sizeof(float));
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, f->orig);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_arena_is(f->m, trained);
    assert_int_equal(ps_perturb_reset_all(f->j, &res, &err), PS_OK);
    assert_arena_is(f->m, f->orig);
    assert_int_equal(ps_perturb_commit(f->j, &res, &err), PS_ERR_STATE);

    /* cancel leaves values as they are and allows edits again */
    assert_int_equal(ps_perturb_begin(f->j, &r, 1, NULL, &err), PS_OK);
    wpe->data[0] = 42.0f;
    ps_perturb_cancel(f->j);
    assert_true(wpe->data[0] == 42.0f);
    assert_int_equal(ps_perturb_set(f->j, &r, 1, 1.0f, &res, &err), PS_OK);

    /* rebase: the current values become the baseline */
    ps_perturb_rebase(f->j);
    assert_int_equal(ps_perturb_count(f->j), 0);
    assert_true(ps_perturb_baseline_bytes(f->j) == 0);
    float *now = snapshot(f->m);
    assert_int_equal(ps_perturb_capture(f->j, wpe, &err), PS_OK);
    wpe->data[3] = -5.0f;        /* an outside write after the capture */
    assert_int_equal(ps_perturb_reset_param(f->j, wpe, &res, &err), PS_OK);
    assert_arena_is(f->m, now);
    free(now);
    free(trained);
}

/* ---- the journal ---- */

static void test_journal_cap_drops_oldest(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *w = param(f, "h.0.attn.c_proj.weight");
    /* each scale of two rows stores its 16 old floats, 64 bytes (the new
     * ones are computed again on redo) */
    assert_int_equal(ps_perturb_set_cap(f->j, 150), 0);
    assert_true(ps_perturb_cap(f->j) == 150);
    float *states[4];
    for (int i = 0; i < 4; i++) {
        ps_region r = ps_region_rows(w, 2 * (size_t)i, 2);
        assert_int_equal(ps_perturb_scale(f->j, &r, 1, 3.0f, &res, &err), PS_OK);
        assert_int_equal(res.n_dropped, i >= 2 ? 1 : 0);
        states[i] = snapshot(f->m);
    }
    assert_int_equal(ps_perturb_count(f->j), 2);
    assert_int_equal(ps_perturb_cursor(f->j), 2);
    assert_true(ps_perturb_dropped(f->j) == 2);
    assert_true(ps_perturb_bytes(f->j) == 128);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 0, &info, &err), PS_OK);
    assert_string_equal(info.name, "scale h.0.attn.c_proj.weight[4:6] 3");
    assert_int_equal(info.bytes, 64);

    /* undo reaches back only as far as what was kept */
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, states[1]);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_ERR_STATE);
    /* lowering the cap with only undone entries drops them from the newest */
    assert_int_equal(ps_perturb_set_cap(f->j, 100), 1);
    assert_int_equal(ps_perturb_count(f->j), 1);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_arena_is(f->m, states[2]);

    /* an edit bigger than the cap is kept alone, and still undoable */
    assert_int_equal(ps_perturb_set_cap(f->j, 50), 0);   /* the one applied entry stays */
    ps_region big = ps_region_whole(w);
    float ones[64];
    for (int i = 0; i < 64; i++)
        ones[i] = 1.0f;
    assert_int_equal(ps_perturb_assign(f->j, &big, 1, ones, &res, &err), PS_OK);
    assert_true(ps_perturb_bytes(f->j) == 2 * 64 * sizeof(float));  /* old and new */
    assert_int_equal(res.n_dropped, 1);
    assert_int_equal(ps_perturb_count(f->j), 1);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_arena_is(f->m, states[2]);
    for (int i = 0; i < 4; i++)
        free(states[i]);
}

static void test_redo_tail_and_history(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_region r = ps_region_whole(param(f, "h.1.ln_1.weight"));
    assert_int_equal(ps_perturb_set(f->j, &r, 1, 1.0f, NULL, &err), PS_OK);
    assert_int_equal(ps_perturb_set(f->j, &r, 1, 2.0f, NULL, &err), PS_OK);
    assert_int_equal(ps_perturb_set(f->j, &r, 1, 3.0f, NULL, &err), PS_OK);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_int_equal(ps_perturb_cursor(f->j), 1);
    assert_int_equal(ps_perturb_count(f->j), 3);
    ps_perturb_entry info;
    assert_int_equal(ps_perturb_entry_info(f->j, 2, &info, &err), PS_OK);
    assert_int_equal(info.applied, 0);
    assert_int_equal(ps_perturb_entry_info(f->j, 0, &info, &err), PS_OK);
    assert_int_equal(info.applied, 1);

    /* a new edit drops what was undone */
    assert_int_equal(ps_perturb_zero(f->j, &r, 1, NULL, &err), PS_OK);
    assert_int_equal(ps_perturb_count(f->j), 2);
    assert_true(ps_perturb_bytes(f->j) == 2 * 8 * sizeof(float));  /* set, zero: old only */
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_ERR_STATE);
    assert_string_equal(err.msg, "nothing to redo");
    assert_int_equal(ps_perturb_entry_info(f->j, 1, &info, &err), PS_OK);
    assert_string_equal(info.name, "zero h.1.ln_1.weight");
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_true(r.param->data[0] == 1.0f);

    ps_perturb_clear(f->j);
    assert_int_equal(ps_perturb_count(f->j), 0);
    assert_true(ps_perturb_bytes(f->j) == 0);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_ERR_STATE);
}

static void test_invalid_changes_nothing(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_perturb_result res;
    ps_param *w = param(f, "h.0.attn.c_attn.weight");     /* [8, 24] */
    ps_region good = ps_region_rows(w, 0, 8);
    ps_region bad_row = ps_region_block(w, 7, 2, 0, 4);
    ps_region bad_col = ps_region_block(w, 0, 1, 20, 5);
    ps_region bad_ld = ps_region_block(w, 0, 2, 0, 4);
    bad_ld.ld = 23;
    ps_region empty = ps_region_block(w, 0, 0, 0, 4);
    ps_region bad_1d = ps_region_block(param(f, "ln_f.weight"), 0, 1, 6, 3);
    ps_region pair[2] = {good, bad_row};
    uint64_t gen = ps_perturb_generation(f->j);

    res.n_values = 123;
    assert_int_equal(ps_perturb_set(f->j, &bad_row, 1, 5.0f, &res, &err), PS_ERR_RANGE);
    assert_string_equal(err.msg, "h.0.attn.c_attn.weight: rows 7:9 are outside the shape [8, 24]");
    assert_int_equal(res.n_values, 0);
    assert_int_equal(ps_perturb_scale(f->j, pair, 2, 0.0f, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_zero(f->j, &bad_col, 1, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_zero(f->j, &bad_ld, 1, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_zero(f->j, &empty, 1, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_zero(f->j, &bad_1d, 1, &res, &err), PS_ERR_RANGE);
    assert_int_equal(ps_perturb_zero(f->j, &good, 0, &res, &err), PS_ERR_INVALID);
    assert_int_equal(ps_perturb_assign(f->j, &good, 1, NULL, &res, &err), PS_ERR_INVALID);
    ps_edit not_an_edit = {.op = PS_PERTURB_OP_RESET};
    assert_int_equal(ps_perturb_edit(f->j, &good, 1, &not_an_edit, &res, &err), PS_ERR_INVALID);

    /* a parameter of another model */
    ps_model *other = NULL;
    assert_int_equal(ps_model_init(&other, &tiny, &err), PS_OK);
    ps_region foreign = ps_region_whole(&other->params[0]);
    assert_int_equal(ps_perturb_zero(f->j, &foreign, 1, &res, &err), PS_ERR_INVALID);
    assert_int_equal(ps_perturb_reset_param(f->j, &other->params[0], &res, &err), PS_ERR_INVALID);
    ps_model_free(other);

    assert_arena_is(f->m, f->orig);
    assert_int_equal(ps_perturb_count(f->j), 0);
    assert_true(ps_perturb_generation(f->j) == gen);
    assert_int_equal(ps_region_check(&bad_row, NULL), PS_ERR_RANGE);
    assert_int_equal(ps_region_check(&good, NULL), PS_OK);
}

static void test_generation_counts_changes(void **state)
{
    fixture *f = *state;
    ps_error err = {0};
    ps_region r = ps_region_whole(param(f, "ln_f.weight"));
    uint64_t g = ps_perturb_generation(f->j);
    assert_int_equal(ps_perturb_add(f->j, &r, 1, 1.0f, NULL, &err), PS_OK);
    assert_true(ps_perturb_generation(f->j) == g + 1);
    assert_int_equal(ps_perturb_undo(f->j, &err), PS_OK);
    assert_true(ps_perturb_generation(f->j) == g + 2);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_OK);
    assert_true(ps_perturb_generation(f->j) == g + 3);
    assert_int_equal(ps_perturb_reset_all(f->j, NULL, &err), PS_OK);
    assert_true(ps_perturb_generation(f->j) == g + 4);
    assert_int_equal(ps_perturb_redo(f->j, &err), PS_ERR_STATE);
    assert_true(ps_perturb_generation(f->j) == g + 4);
    ps_perturb_free(NULL);
}

/* keep_finite: an edit that would turn a finite value into NaN or an
 * infinity fails, names the first such value and changes no bit; without it
 * tools may write any bits; values non-finite before may stay so. */
static void test_keep_finite(void **state)
{
    fixture *f = *state;
    ps_param *p = ps_model_find(f->m, "h.0.mlp.c_fc.weight");
    ps_region whole = ps_region_whole(p);
    ps_region one = ps_region_index(p, 7);
    ps_perturb_result res;
    ps_error err = {0};
    ps_edit big = {.op = PS_PERTURB_OP_SET, .value = 3e38f, .keep_finite = 1};
    assert_int_equal(ps_perturb_edit(f->j, &one, 1, &big, &res, &err), PS_OK);
    size_t bytes = p->numel * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, p->data, bytes);
    static const ps_edit bad[] = {
        {.op = PS_PERTURB_OP_SCALE, .value = 10.0f, .keep_finite = 1},
        {.op = PS_PERTURB_OP_ADD, .value = 3e38f, .keep_finite = 1},
        {.op = PS_PERTURB_OP_SET, .value = INFINITY, .keep_finite = 1},
        {.op = PS_PERTURB_OP_SET, .value = NAN, .keep_finite = 1},
        {.op = PS_PERTURB_OP_SCALE, .value = INFINITY, .keep_finite = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ps_perturb_edit(f->j, &whole, 1, &bad[i], &res, &err), PS_ERR_NUMERIC);
        assert_non_null(strstr(err.msg, "h.0.mlp.c_fc.weight["));
        assert_non_null(strstr(err.msg, "nothing was changed"));
        assert_memory_equal(p->data, before, bytes);
        assert_int_equal(ps_perturb_count(f->j), 1);
    }
    assert_non_null(strstr(err.msg, "h.0.mlp.c_fc.weight[0, 0]"));   /* the first one */
    /* without keep_finite the journal writes what it is told */
    ps_edit raw = {.op = PS_PERTURB_OP_SCALE, .value = 10.0f};
    assert_int_equal(ps_perturb_edit(f->j, &one, 1, &raw, &res, &err), PS_OK);
    assert_true(isinf(p->data[7]));
    /* an infinity already there may stay one */
    ps_edit half = {.op = PS_PERTURB_OP_SCALE, .value = 0.5f, .keep_finite = 1};
    assert_int_equal(ps_perturb_edit(f->j, &whole, 1, &half, &res, &err), PS_OK);
    assert_true(isinf(p->data[7]));
    free(before);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_random_edits_bit_exact),
        T(test_signed_zero_and_nan_payload),
        T(test_head_and_neuron_regions),
        T(test_region_forms_and_names),
        T(test_prune_smallest),
        T(test_quantize_errors),
        T(test_noise_reproducible),
        T(test_reset_param_only),
        T(test_diff_figures),
        T(test_capture_before_outside_change),
        T(test_journal_cap_drops_oldest),
        T(test_redo_tail_and_history),
        T(test_invalid_changes_nothing),
        T(test_generation_counts_changes),
        T(test_keep_finite),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
