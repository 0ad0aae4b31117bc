//go:build cuda

package tensor

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gopaca/paca/tensor/internal/cudrv"
)

// The CUDA backend: tensors in GPU memory (cuda_memory.go), GEMMs on
// cuBLAS, everything else on the kernels of kernels/*.cu, compiled at
// start-up with NVRTC for the GPU found (cuda_driver.go opens the
// libraries). UseCUDA installs it; the root package's accel_cuda.go calls
// that for the tool.

//go:embed kernels/*.cu kernels/*.cuh
var kernelSources embed.FS

// kernelSource is the program NVRTC compiles: common.cuh, then every .cu
// file in name order.
func kernelSource() string {
	var b strings.Builder
	common, err := kernelSources.ReadFile("kernels/common.cuh")
	if err != nil {
		panic(err)
	}
	b.Write(common)
	ents, err := kernelSources.ReadDir("kernels")
	if err != nil {
		panic(err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".cu") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		src, err := kernelSources.ReadFile("kernels/" + n)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "\n// ---- %s\n", n)
		b.Write(src)
	}
	return b.String()
}

// cudaKernels holds the compiled kernels; each field's tag is the kernel's
// name in kernels/*.cu.
type cudaKernels struct {
	add, addScaled, addRowVector, sumRows, scale cudaFunc
	mulElems, mulCols, sumRowsMul                cudaFunc
	swigluFwd, swigluBwd, f32ToBF16, halfToF32   cudaFunc
	gatherRows, gatherRowsHalf, scatterAddRows   cudaFunc
	gatherCols, scatterAddCols, cacheWrite       cudaFunc
	rmsnormFwd, rmsnormBwdDx, rmsnormBwdDw, rope cudaFunc
	attnFwd, attnFwdNaive, attnBwdDelta          cudaFunc
	attnBwdDq, attnBwdDkv                        cudaFunc
	attnBwdDqNaive, attnBwdDkvNaive              cudaFunc
	ceFwd, ceBwd, sumF64, sumsqPartial           cudaFunc
	adamw, nf4Dequant, dropout, doraNorms        cudaFunc
}

// kernelNames maps the fields of cudaKernels to the kernels' names: the
// field name in snake case.
func kernelName(field string) string {
	var b strings.Builder
	for i, r := range field {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return strings.ReplaceAll(b.String(), "_b_f16", "_bf16")
}

// UseCUDA opens the GPU (PACA_CUDA_DEVICE, default 0), compiles the
// kernels and installs the CUDA backend and its memory for every tensor
// created from then on. Call it once, at start-up, before creating
// tensors. It returns a description of the device, or why there is no
// usable one; on error nothing is installed and the CPU backend stays.
//
// PACA_TF32=1 lets cuBLAS use TF32 tensor cores for float32 GEMMs (about
// 1e-3 relative error instead of float32's 1e-7). A bf16 weight (--dtype
// bf16) multiplies on bfloat16 tensor cores with float32 accumulation;
// PACA_GEMM_BF16=1 does the same for float32 weights.
func UseCUDA() (string, error) {
	if _, ok := backend.(*cudaBackend); ok {
		return backend.Name(), nil
	}
	ordinal := 0
	if s := os.Getenv("PACA_CUDA_DEVICE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return "", fmt.Errorf("PACA_CUDA_DEVICE=%q is not a device number", s)
		}
		ordinal = n
	}
	tf32 := os.Getenv("PACA_TF32") == "1"
	dev, err := cudrv.Open(ordinal, tf32)
	if err != nil {
		return "", err
	}
	if !dev.ConcurrentUVM {
		return "", fmt.Errorf("%s cannot share managed memory with the host while kernels run", dev.Name)
	}
	b := &cudaBackend{dev: dev, mem: &cudaMemory{pieces: map[int][]unsafe.Pointer{}}, ints: map[uintptr]*intBuf{},
		bf16: os.Getenv("PACA_GEMM_BF16") == "1"}
	arch, err := b.loadKernels()
	if err != nil {
		return "", err
	}
	b.name = fmt.Sprintf("cuda: %s (%s, %d SMs, %s memory, driver %d.%d, NVRTC %d.%d)", dev.Name, arch, dev.SMs,
		FormatBytes(dev.TotalMem), dev.Driver/1000, dev.Driver%1000/10, dev.NVRTC[0], dev.NVRTC[1])
	if tf32 {
		b.name += ", TF32 GEMMs"
	}
	if b.bf16 {
		b.name += ", bf16 GEMMs"
	}
	b.mem.widenFn = b.widen
	device = b.mem
	backend = b
	return b.name, nil
}

// loadKernels compiles (or finds in the cache) and loads the kernels.
func (b *cudaBackend) loadKernels() (string, error) {
	src := kernelSource()
	image, arch, err := cachedKernels(src, b.dev)
	if err != nil {
		return "", fmt.Errorf("compiling the kernels: %v", err)
	}
	mod, err := cudrv.LoadModule(image)
	if err != nil {
		return "", fmt.Errorf("loading the kernels (%s): %v", arch, err)
	}
	v := reflect.ValueOf(&b.k).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, err := mod.Function(kernelName(v.Type().Field(i).Name))
		if err != nil {
			return "", err
		}
		*(*cudaFunc)(v.Field(i).Addr().UnsafePointer()) = cudaFunc(f)
	}
	return arch, nil
}

// cachedKernels returns the kernels compiled for the device, from the
// cache folder (PACA_CUDA_CACHE, or paca/ in the user's cache folder) when
// this source was compiled before by this NVRTC for this GPU, else from
// NVRTC, keeping the result there. The cache only saves the second or so
// that NVRTC takes at each start (each bench worker is a process).
func cachedKernels(src string, d *cudrv.Device) ([]byte, string, error) {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00sm_%d%d\x00nvrtc %v\x00driver %d", src, d.Major, d.Minor, d.NVRTC, d.Driver)))
	dir := os.Getenv("PACA_CUDA_CACHE")
	if dir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(c, "paca")
		}
	}
	var path string
	if dir != "" {
		path = filepath.Join(dir, "kernels-"+hex.EncodeToString(h[:12])+".bin")
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			arch, image, ok := strings.Cut(string(b), "\n")
			if ok {
				return []byte(image), arch + " (cached)", nil
			}
		}
	}
	image, arch, err := cudrv.Compile(src, d.Major, d.Minor)
	if err != nil {
		return nil, "", err
	}
	if path != "" && os.MkdirAll(dir, 0o755) == nil {
		tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
		if os.WriteFile(tmp, append([]byte(arch+"\n"), image...), 0o644) == nil {
			os.Rename(tmp, path)
		}
	}
	return image, arch, nil
}
