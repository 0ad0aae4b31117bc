package tensor

import "math"

// Naive float64 reference implementations of every op's forward, written
// from the HF/PyTorch definitions with plain loops and no cleverness, so
// that they can be read and trusted at a glance. They share nothing with
// cpu.go. All tensors are flat row-major []float64.

// refLinear: y (N, out) = x (N, in) · Wᵀ + b; b may be nil.
func refLinear(x, w, b []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for r := 0; r < n; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[o*in+i]
			}
			if b != nil {
				s += b[o]
			}
			y[r*out+o] = s
		}
	}
	return y
}

// refAdd: y = a + b elementwise.
func refAdd(a, b []float64) []float64 {
	y := make([]float64, len(a))
	for i := range a {
		y[i] = a[i] + b[i]
	}
	return y
}

// refEmbedding: y[i,:] = table[ids[i],:], table (V, C).
func refEmbedding(table []float64, ids []int32, c int) []float64 {
	y := make([]float64, len(ids)*c)
	for i, id := range ids {
		for j := 0; j < c; j++ {
			y[i*c+j] = table[int(id)*c+j]
		}
	}
	return y
}

// refRMSNorm: y = x · 1/sqrt(mean(x²) + eps) · w, per row of length c.
func refRMSNorm(x, w []float64, c int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/c; r++ {
		ms := 0.0
		for j := 0; j < c; j++ {
			ms += x[r*c+j] * x[r*c+j]
		}
		ms /= float64(c)
		inv := 1 / math.Sqrt(ms+eps)
		for j := 0; j < c; j++ {
			y[r*c+j] = x[r*c+j] * inv * w[j]
		}
	}
	return y
}

// refRoPE applies rotate-half rotary embeddings to x (rows, heads·d): row r
// is position r mod seqLen, cos and sin are (seqLen, d/2) tables.
func refRoPE(x, cos, sin []float64, rows, cols, seqLen, d int) []float64 {
	half := d / 2
	y := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		pos := r % seqLen
		for h := 0; h < cols/d; h++ {
			base := r*cols + h*d
			for i := 0; i < half; i++ {
				c, s := cos[pos*half+i], sin[pos*half+i]
				x1, x2 := x[base+i], x[base+i+half]
				y[base+i] = x1*c - x2*s
				y[base+i+half] = x2*c + x1*s
			}
		}
	}
	return y
}

// refAttention is causal grouped-query attention computed the textbook way:
// for every (batch, head) build the full T×T score matrix q kᵀ/√D, set the
// entries above the diagonal to −∞, softmax each row, multiply by v. Query
// head h reads key/value head h / (H/KV).
func refAttention(q, k, v []float64, s AttnShape) []float64 {
	B, T, H, KV, D := s.B, s.T, s.H, s.KV, s.D
	out := make([]float64, B*T*H*D)
	group := H / KV
	scale := 1 / math.Sqrt(float64(D))
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			g := h / group
			scores := make([][]float64, T)
			for t := 0; t < T; t++ {
				scores[t] = make([]float64, T)
				for j := 0; j < T; j++ {
					if j > t {
						scores[t][j] = math.Inf(-1)
						continue
					}
					dot := 0.0
					for i := 0; i < D; i++ {
						dot += q[(b*T+t)*H*D+h*D+i] * k[(b*T+j)*KV*D+g*D+i]
					}
					scores[t][j] = dot * scale
				}
			}
			for t := 0; t < T; t++ {
				p := refSoftmax(scores[t])
				for i := 0; i < D; i++ {
					acc := 0.0
					for j := 0; j < T; j++ {
						acc += p[j] * v[(b*T+j)*KV*D+g*D+i]
					}
					out[(b*T+t)*H*D+h*D+i] = acc
				}
			}
		}
	}
	return out
}

// refSoftmax of a row; −∞ entries get probability 0.
func refSoftmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	p := make([]float64, len(z))
	sum := 0.0
	for i, v := range z {
		p[i] = math.Exp(v - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// refSwiGLU: y = silu(g) · u with silu(g) = g / (1 + e^{−g}).
func refSwiGLU(g, u []float64) []float64 {
	y := make([]float64, len(g))
	for i := range g {
		y[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
	}
	return y
}

// refCrossEntropy: mean over rows with target ≥ 0 of −log softmax(z)[target];
// 0 when no row counts. Also returns the count.
func refCrossEntropy(logits []float64, targets []int32, v int) (float64, int) {
	sum, n := 0.0, 0
	for r, t := range targets {
		if t < 0 {
			continue
		}
		p := refSoftmax(logits[r*v : (r+1)*v])
		sum += -math.Log(p[t])
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}
