// The explicit monodomain step for TP06 as one hand-written CPU kernel (float32).
//
// Per voxel-simulation, in one pass: the diffusion current of the ELLPACK stencil
// (sum_k c_k (V[nbr_k] - V) times diff_factor, or a current given by the caller), the TP06
// step of pipeline.cell.tp06.step_states (Rush-Larsen gates, forward Euler for V and the
// concentrations), V += dt I_d, and the on-line activation and repolarisation crossings of
// pipeline.monodomain.splitting.crossings. The equations are those of tp06.py, line for
// line; exp, log and expm1 are inline polynomial forms (Cephes-style range reduction,
// within 2 ulp of the C library over the range used) so that GCC vectorises the whole
// cell step. Loaded with ctypes by pipeline.monodomain.native; built by it with the
// system C++ compiler (no Python or torch headers).
//
// Layout: state (19, B, n) contiguous; act, rep, i_diff (B, n) contiguous; coefficient
// tables (B, K, n) contiguous, neighbours int32 (K, n) (neighbour-major); parameters and
// the stimulus as 2-D strided views (stride 0 where they broadcast).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#define PIPELINE_INLINE inline __attribute__((always_inline))

namespace {

constexpr int64_t BLOCK = 512;
constexpr int N_STATES = 19;
constexpr int N_PARAMS = 13;

PIPELINE_INLINE float bits_to_float(int32_t i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

PIPELINE_INLINE int32_t float_to_bits(float f) {
    int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i;
}

// exp(x): x = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-7 polynomial (Cephes expf
// coefficients), times 2^n built in the exponent bits. The argument is clamped to
// [-87.34, 88.38], so the result saturates at 1.2e-38 and 2.4e38 instead of reaching 0
// or inf (no TP06 quantity depends on the difference); NaN stays NaN (the clamps keep
// it, and it poisons the polynomial).
PIPELINE_INLINE float fexp(float x) {
    constexpr float HI = 88.3762626647949f, LO = -87.3365447505531f;
    float xc = x > HI ? HI : x;
    xc = xc < LO ? LO : xc;
    const float fn = std::floor(xc * 1.44269504088896341f + 0.5f);
    float r = xc - fn * 0.693359375f;
    r = r + fn * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    return y * bits_to_float((static_cast<int32_t>(fn) + 127) << 23);
}

// log(x) for normal positive x: x = 2^e m, m in [sqrt(1/2), sqrt(2)), log(m) by the
// Cephes logf polynomial. 0 -> -inf, negative or NaN -> NaN, inf -> inf.
PIPELINE_INLINE float flog(float x) {
    int32_t bits = float_to_bits(x);
    float e = static_cast<float>(((bits >> 23) & 0xff) - 126);
    float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);   // [0.5, 1)
    bool low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y = y - 2.12194440e-4f * e;
    y = y - 0.5f * z;
    float r = m + y + 0.693359375f * e;
    r = x == 0.0f ? -std::numeric_limits<float>::infinity() : r;
    r = x < 0.0f ? std::numeric_limits<float>::quiet_NaN() : r;
    r = x == std::numeric_limits<float>::infinity() ? x : r;
    return x != x ? x : r;
}

// exp(x) - 1 given ex = exp(x): a Taylor polynomial for |x| < 0.5, else ex - 1.
PIPELINE_INLINE float fexpm1(float x, float ex) {
    float p = 1.0f + x * (1.0f / 9.0f);
    p = 1.0f + x * (1.0f / 8.0f) * p;
    p = 1.0f + x * (1.0f / 7.0f) * p;
    p = 1.0f + x * (1.0f / 6.0f) * p;
    p = 1.0f + x * (1.0f / 5.0f) * p;
    p = 1.0f + x * (1.0f / 4.0f) * p;
    p = 1.0f + x * (1.0f / 3.0f) * p;
    p = 1.0f + x * 0.5f * p;
    return std::fabs(x) < 0.5f ? x * p : ex - 1.0f;
}

// ------------------------------------------------------------------ TP06 constants
constexpr double R_GAS = 8314.472, T_K = 310.0, F_FARADAY = 96485.3415;
constexpr double RTF_D = R_GAS * T_K / F_FARADAY;
constexpr float RTF = static_cast<float>(RTF_D);
constexpr float FRT = static_cast<float>(1.0 / RTF_D);
constexpr double CM = 0.185, V_C = 0.016404, V_SR = 0.001094, V_SS = 0.00005468;
constexpr double K_O = 5.4, NA_O = 140.0, CA_O = 2.0, P_KNA = 0.03;
constexpr double K_MK = 1.0, K_MNA = 40.0;
constexpr double K_SAT = 0.1, ALPHA_NACA = 2.5, GAMMA_NACA = 0.35, KM_CA = 1.38, KM_NAI = 87.5;
constexpr double K_PCA = 0.0005;
constexpr double K1_PRIME = 0.15, K2_PRIME = 0.045, K3 = 0.060, K4 = 0.005;
constexpr double EC = 1.5, MAX_SR = 2.5, MIN_SR = 1.0;
constexpr double V_REL = 0.102, V_XFER = 0.0038, K_UP = 0.00025, V_LEAK = 0.00036;
constexpr double VMAX_UP = 0.006375;
constexpr double BUF_C = 0.2, K_BUF_C = 0.001, BUF_SR = 10.0, K_BUF_SR = 0.3;
constexpr double BUF_SS = 0.4, K_BUF_SS = 0.00025;
constexpr double CM_VCF = CM / (V_C * F_FARADAY);
constexpr double CM_2VCF = CM_VCF / 2.0;
constexpr double CM_2VSSF = CM / (2.0 * V_SS * F_FARADAY);
constexpr double SQRT_KO = 1.0;   // sqrt(K_O / 5.4) with K_O = 5.4

constexpr float f(double x) { return static_cast<float>(x); }

struct Params {
    float g_Na, g_K1, g_to, g_Kr, g_Ks, g_CaL, g_bNa, g_bCa, g_pCa, g_pK, P_NaK, K_NaCa, endo;
};

// One voxel-simulation: states in s[0..18] (TP06 order), new states out in o[0..18].
// Mirrors tp06.step_states; expressions keep its grouping (constants folded in double).
PIPELINE_INLINE void tp06_cell(const float* __restrict s, float* __restrict o, int64_t plane,
                               const Params& p, float i_stim, float dt, float dv_diff) {
    const float V = s[0], K_i = s[plane], Na_i = s[2 * plane], Ca_i = s[3 * plane];
    const float Ca_SR = s[4 * plane], Ca_ss = s[5 * plane], R_prime = s[6 * plane];
    const float Xr1 = s[7 * plane], Xr2 = s[8 * plane], Xs = s[9 * plane];
    const float m = s[10 * plane], h = s[11 * plane], j = s[12 * plane], d = s[13 * plane];
    const float ff = s[14 * plane], f2 = s[15 * plane], fCass = s[16 * plane];
    const float ss = s[17 * plane], r = s[18 * plane];

    const float E_K = RTF * flog(f(K_O) / K_i);
    const float E_Na = RTF * flog(f(NA_O) / Na_i);
    const float E_Ks = RTF * flog(f(K_O + P_KNA * NA_O) / (K_i + f(P_KNA) * Na_i));
    const float E_Ca = 0.5f * RTF * flog(f(CA_O) / Ca_i);

    const float vk = V - E_K;
    const float e_a = fexp(0.06f * (vk - 200.0f));
    const float e_b = fexp(-0.5f * vk);
    const float num_K1 = 0.1f * (1.0f + e_b);
    const float x_K1 = num_K1 / (num_K1 + (3.0f * fexp(0.0002f * (vk + 100.0f))
                                           + fexp(0.1f * (vk - 10.0f))) * (1.0f + e_a));
    const float i_K1 = p.g_K1 * f(SQRT_KO) * x_K1 * vk;
    const float i_to = p.g_to * r * ss * vk;
    const float i_Kr = p.g_Kr * f(SQRT_KO) * Xr1 * Xr2 * vk;
    const float i_Ks = p.g_Ks * Xs * Xs * (V - E_Ks);
    const float i_Na = p.g_Na * m * m * m * h * j * (V - E_Na);
    const float i_bNa = p.g_bNa * (V - E_Na);
    const float i_bCa = p.g_bCa * (V - E_Ca);
    const float z = 2.0f * (V - 15.0f) * FRT;
    const float e_frt = fexp(-V * FRT);
    // exp(z) = exp(-30 F/RT) / exp(-V F/RT)^2: one exponential fewer than tp06.py
    const float ez = f(std::exp(-30.0 / RTF_D)) / (e_frt * e_frt);
    const bool small = std::fabs(z) < 1e-4f;
    const float ghk = small ? 0.5f * RTF * (1.0f - 0.5f * z)
                            : (V - 15.0f) / fexpm1(small ? 1.0f : z, small ? f(std::exp(1.0)) : ez);
    const float i_CaL = p.g_CaL * d * ff * f2 * fCass * f(4.0 * F_FARADAY / RTF_D)
        * (0.25f * Ca_ss * ez - f(CA_O)) * ghk;
    const float i_NaK = p.P_NaK * f(K_O / (K_O + K_MK)) * Na_i
        / ((Na_i + f(K_MNA)) * (1.0f + 0.1245f * fexp(-0.1f * V * FRT) + 0.0353f * e_frt));
    const float e_g = fexp(f(GAMMA_NACA) * V * FRT);
    const float e_g1 = e_g * e_frt;
    const float i_NaCa = p.K_NaCa * (e_g * Na_i * Na_i * Na_i * f(CA_O)
                                     - e_g1 * f(NA_O * NA_O * NA_O) * Ca_i * f(ALPHA_NACA))
        / (f((KM_NAI * KM_NAI * KM_NAI + NA_O * NA_O * NA_O) * (KM_CA + CA_O))
           * (1.0f + f(K_SAT) * e_g1));
    const float i_pCa = p.g_pCa * Ca_i / (Ca_i + f(K_PCA));
    const float i_pK = p.g_pK * vk / (1.0f + fexp((25.0f - V) * f(1.0 / 5.98)));

    const float i_ion = i_K1 + i_to + i_Kr + i_Ks + i_CaL + i_NaK + i_Na + i_bNa + i_NaCa
        + i_bCa + i_pK + i_pCa;

    // gates (Rush-Larsen), the shared exponentials of tp06.step_states
    // exp(V/10) and exp(V/20) as square roots of exp(V/5) (correctly rounded, cheaper)
    const float e5 = fexp(V * f(1.0 / 5.0)), e7 = fexp(V * f(1.0 / 7.0));
    const float e10 = std::sqrt(e5), e20 = std::sqrt(e10);
    const float e6n = fexp(V * f(-1.0 / 6.0));
    const float e10n = 1.0f / e10, e20n = 1.0f / e20;
    auto rl_rate = [dt](float g, float inf, float rate) {
        return inf + (g - inf) * fexp(-dt * rate);
    };
    auto rl = [dt](float g, float inf, float tau) { return inf + (g - inf) * fexp(-dt / tau); };

    const float Xr1_n = rl_rate(Xr1, e7 / (e7 + f(std::exp(-26.0 / 7.0))),
                                (1.0f + f(std::exp(-4.5)) * e10n)
                                * (1.0f + fexp((V + 30.0f) * f(1.0 / 11.5))) * f(1.0 / 2700.0));
    const float Xr2_n = rl_rate(Xr2, 1.0f / (1.0f + fexp((V + 88.0f) * f(1.0 / 24.0))),
                                (1.0f + f(std::exp(-3.0)) * e20n)
                                * (1.0f + f(std::exp(-3.0)) * e20) * f(1.0 / 3.36));
    const float Xs_n = rl(Xs, 1.0f / (1.0f + fexp((-5.0f - V) * f(1.0 / 14.0))),
                          1400.0f * (1.0f / std::sqrt(1.0f + f(std::exp(5.0 / 6.0)) * e6n))
                          / (1.0f + fexp((V - 35.0f) * f(1.0 / 15.0))) + 80.0f);
    const float m_s = 1.0f + fexp((-56.86f - V) * f(1.0 / 9.03));
    const float m_inf = 1.0f / (m_s * m_s);
    const float m_2 = 1.0f + f(std::exp(7.0)) * e5;
    const float m_3 = 1.0f + fexp((V - 50.0f) * f(1.0 / 200.0));
    const float m_n = rl_rate(m, m_inf, (e5 + f(std::exp(-12.0))) * m_2 * m_3
                              / (0.1f * e5 * (m_2 + m_3)));
    const float hj_s = 1.0f + fexp((V + 71.55f) * f(1.0 / 7.43));
    const float hj_inf = 1.0f / (hj_s * hj_s);
    // h and j: an exponential shared by the two branches takes its argument by branch
    // (the vector code evaluates both branches)
    const bool low = V < -40.0f;
    const float alpha_h = low ? 0.057f * fexp(-(V + 80.0f) * f(1.0 / 6.8)) : 0.0f;
    const float e_h = fexp(low ? 0.079f * V : -(V + 10.66f) * f(1.0 / 11.1));
    const float beta_h = low ? 2.7f * e_h + 3.1e5f * fexp(0.3485f * V)
                             : f(0.77 / 0.13) / (1.0f + e_h);
    const float h_n = rl_rate(h, hj_inf, alpha_h + beta_h);
    const float alpha_j = low ? (-2.5428e4f * fexp(0.2444f * V) - 6.948e-6f * fexp(-0.04391f * V))
                                * (V + 37.78f) / (1.0f + fexp(0.311f * (V + 79.23f)))
                              : 0.0f;
    const float e_j = fexp(low ? -0.01052f * V : 0.057f * V);
    const float beta_j = low ? 0.02424f * e_j / (1.0f + fexp(-0.1378f * (V + 40.14f)))
                             : 0.6f * e_j / (1.0f + f(std::exp(-3.2)) * e10n);
    const float j_n = rl_rate(j, hj_inf, alpha_j + beta_j);
    const float d_n = rl(d, 1.0f / (1.0f + fexp((-8.0f - V) * f(1.0 / 7.5))),
                         (1.4f / (1.0f + fexp((-35.0f - V) * f(1.0 / 13.0))) + 0.25f) * 1.4f
                         / (1.0f + f(std::exp(1.0)) * e5)
                         + 1.0f / (1.0f + f(std::exp(2.5)) * e20n));
    const float f_30 = 1.0f + f(std::exp(3.0)) * e10;
    const float v27 = (V + 27.0f) * (V + 27.0f);
    const float f_n = rl(ff, 1.0f / (1.0f + f(std::exp(20.0 / 7.0)) * e7),
                         1102.5f * fexp(-v27 * f(1.0 / 225.0))
                         + 200.0f / (1.0f + f(std::exp(1.3)) * e10n)
                         + 180.0f / f_30 + 20.0f);
    const float f2_n = rl(f2, 0.67f / (1.0f + f(std::exp(5.0)) * e7) + 0.33f,
                          562.0f * fexp(-v27 * f(1.0 / 240.0))
                          + 31.0f / (1.0f + f(std::exp(2.5)) * e10n)
                          + 80.0f / f_30);
    const float qc = Ca_ss * f(1.0 / 0.05);
    const float q_cass = 1.0f / (1.0f + qc * qc);
    const float fCass_n = rl(fCass, 0.6f * q_cass + 0.4f, 80.0f * q_cass + 2.0f);
    const bool is_endo = p.endo > 0.5f;
    const float s_inf = is_endo ? 1.0f / (1.0f + f(std::exp(5.6)) * e5)
                                : 1.0f / (1.0f + f(std::exp(4.0)) * e5);
    const float v67 = (V + 67.0f) * (V + 67.0f), v45 = (V + 45.0f) * (V + 45.0f);
    const float e_s = fexp(is_endo ? -v67 * f(1.0 / 1000.0) : -v45 * f(1.0 / 320.0));
    const float tau_s = is_endo ? 1000.0f * e_s + 8.0f
                                : 85.0f * e_s + 5.0f / (1.0f + f(std::exp(-4.0)) * e5) + 3.0f;
    const float s_n = rl(ss, s_inf, tau_s);
    const float v40 = (V + 40.0f) * (V + 40.0f);
    const float r_n = rl(r, 1.0f / (1.0f + f(std::exp(20.0 / 6.0)) * e6n),
                         9.5f * fexp(-v40 * f(1.0 / 1800.0)) + 0.8f);

    // calcium handling (mM/ms)
    const float ca_i2 = Ca_i * Ca_i;
    const float i_up = f(VMAX_UP) * ca_i2 / (ca_i2 + f(K_UP * K_UP));
    const float i_leak = f(V_LEAK) * (Ca_SR - Ca_i);
    const float i_xfer = f(V_XFER) * (Ca_ss - Ca_i);
    const float ca_sr2 = Ca_SR * Ca_SR;
    const float kcasr = f(MAX_SR) - f(MAX_SR - MIN_SR) * ca_sr2 / (ca_sr2 + f(EC * EC));
    const float k2 = f(K2_PRIME) * kcasr;
    const float k1cass2 = f(K1_PRIME) * Ca_ss * Ca_ss;
    const float O = k1cass2 * R_prime / (f(K3) * kcasr + k1cass2);
    const float i_rel = f(V_REL) * O * (Ca_SR - Ca_ss);
    const float rate_R = k2 * Ca_ss + f(K4);
    const float R_inf = f(K4) / rate_R;
    const float R_n = R_inf + (R_prime - R_inf) * fexp(-dt * rate_R);

    const float bi = Ca_i + f(K_BUF_C), bsr = Ca_SR + f(K_BUF_SR), bss = Ca_ss + f(K_BUF_SS);
    const float buf_i = 1.0f / (1.0f + f(BUF_C * K_BUF_C) / (bi * bi));
    const float buf_sr = 1.0f / (1.0f + f(BUF_SR * K_BUF_SR) / (bsr * bsr));
    const float buf_ss = 1.0f / (1.0f + f(BUF_SS * K_BUF_SS) / (bss * bss));
    const float dCa_i = buf_i * (-(i_bCa + i_pCa - 2.0f * i_NaCa) * f(CM_2VCF)
                                 + (i_leak - i_up) * f(V_SR / V_C) + i_xfer);
    const float dCa_SR = buf_sr * (i_up - i_rel - i_leak);
    const float dCa_ss = buf_ss * (-i_CaL * f(CM_2VSSF) + i_rel * f(V_SR / V_SS)
                                   - i_xfer * f(V_C / V_SS));
    const float dNa_i = -(i_Na + i_bNa + 3.0f * i_NaK + 3.0f * i_NaCa) * f(CM_VCF);
    const float dK_i = -(i_K1 + i_to + i_Kr + i_Ks + i_pK + i_stim - 2.0f * i_NaK) * f(CM_VCF);
    const float dV = -(i_ion + i_stim);

    o[0] = (V + dt * dV) + dv_diff;
    o[1 * plane] = K_i + dt * dK_i;
    o[2 * plane] = Na_i + dt * dNa_i;
    o[3 * plane] = Ca_i + dt * dCa_i;
    o[4 * plane] = Ca_SR + dt * dCa_SR;
    o[5 * plane] = Ca_ss + dt * dCa_ss;
    o[6 * plane] = R_n;
    o[7 * plane] = Xr1_n;
    o[8 * plane] = Xr2_n;
    o[9 * plane] = Xs_n;
    o[10 * plane] = m_n;
    o[11 * plane] = h_n;
    o[12 * plane] = j_n;
    o[13 * plane] = d_n;
    o[14 * plane] = f_n;
    o[15 * plane] = f2_n;
    o[16 * plane] = fCass_n;
    o[17 * plane] = s_n;
    o[18 * plane] = r_n;
}

// Fill a block of `len` values of a 2-D strided view at row b, columns k0.. (broadcasts).
inline void fill(float* dst, const float* base, int64_t sb, int64_t sn, int64_t b, int64_t k0,
                 int64_t len) {
    const float* src = base + b * sb + k0 * sn;
    if (sn == 0) {
        for (int64_t i = 0; i < len; ++i) dst[i] = src[0];
    } else if (sn == 1) {
        std::memcpy(dst, src, sizeof(float) * len);
    } else {
        for (int64_t i = 0; i < len; ++i) dst[i] = src[i * sn];
    }
}

}  // namespace

extern "C" {

// Version of the calling convention below (checked by the Python loader).
int pipeline_native_abi() { return 1; }

// One explicit step for B simulations of n voxels. Writes state_out, act_out, rep_out
// (fresh buffers, never aliasing the inputs). neighbour == nullptr: the diffusion current
// i_diff (B, n, mV/ms) is given; else it is computed from coef and neighbour.
void tp06_monodomain_step(
        const float* state, float* state_out,
        const int32_t* neighbour, const float* coef, int64_t K, float diff_factor,
        const float* i_diff,
        const float* act, float* act_out, const float* rep, float* rep_out,
        const float* const* param_ptr, const int64_t* param_stride,
        const float* i_stim, int64_t stim_sb, int64_t stim_sn,
        int64_t B, int64_t n, float t, float dt, float v_rep, int threads) {
    const int64_t blocks_per_row = (n + BLOCK - 1) / BLOCK;
    const int64_t tasks = B * blocks_per_row;
    const int64_t plane = B * n;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
        const int64_t b = task / blocks_per_row;
        const int64_t k0 = (task % blocks_per_row) * BLOCK;
        const int64_t len = (n - k0) < BLOCK ? (n - k0) : BLOCK;
        const int64_t base = b * n + k0;
        alignas(64) float par[N_PARAMS][BLOCK];
        alignas(64) float stim[BLOCK];
        alignas(64) float idiff[BLOCK];
        for (int q = 0; q < N_PARAMS; ++q)
            fill(par[q], param_ptr[q], param_stride[2 * q], param_stride[2 * q + 1], b, k0, len);
        fill(stim, i_stim, stim_sb, stim_sn, b, k0, len);
        const float* v_row = state + b * n;
        if (neighbour != nullptr) {
            // tables stored neighbour-major ((K, n) and (B, K, n)): for each neighbour q the
            // coefficients of consecutive voxels are contiguous, so the loop over voxels
            // vectorises (one gather of V per q)
            const float* c = coef + b * K * n + k0;
            const int32_t* nb = neighbour + k0;
            for (int64_t i = 0; i < len; ++i) idiff[i] = 0.0f;
            for (int64_t q = 0; q < K; ++q) {
                const float* cq = c + q * n;
                const int32_t* nq = nb + q * n;
#pragma omp simd
                for (int64_t i = 0; i < len; ++i)
                    idiff[i] += cq[i] * (v_row[nq[i]] - v_row[k0 + i]);
            }
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) idiff[i] *= diff_factor;
        } else {
            std::memcpy(idiff, i_diff + base, sizeof(float) * len);
        }
        const float* s_in = state + base;
        float* s_out = state_out + base;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) {
            const Params p{par[0][i], par[1][i], par[2][i], par[3][i], par[4][i], par[5][i],
                           par[6][i], par[7][i], par[8][i], par[9][i], par[10][i], par[11][i],
                           par[12][i]};
            tp06_cell(s_in + i, s_out + i, plane, p, stim[i], dt, dt * idiff[i]);
            const float v = s_in[i], v_new = s_out[i];
            const float a = act[base + i];
            const bool up = (v < 0.0f) & (v_new >= 0.0f) & (a != a);
            const float a_new = up ? t + dt * v / (v - v_new) : a;
            const bool down = (v >= v_rep) & (v_new < v_rep) & (a_new == a_new);
            act_out[base + i] = a_new;
            rep_out[base + i] = down ? t + dt * (v - v_rep) / (v - v_new) : rep[base + i];
        }
    }
}

}  // extern "C"
