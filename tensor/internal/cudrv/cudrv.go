//go:build cuda

package cudrv

// The CUDA libraries, opened at run time. Nothing here needs the CUDA
// toolkit to build: the few types and entry points used are declared
// below, the libraries (libcuda, libcublas, libnvrtc) are found with
// dlopen and their functions with dlsym, and small C trampolines call
// through the pointers. So `go build -tags cuda` works on any machine with
// a C compiler, and the binary runs on one with a GPU and its libraries.
//
// Every trampoline makes the one context current on its OS thread first
// (goroutines move between threads) and queues its work on the one stream;
// cuBLAS runs on that stream too. They return 0 or an error code: a
// CUresult, cuBLAS's status + errBLAS, or NVRTC's result + errRTC.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;
typedef unsigned long long CUdeviceptr;
typedef void* cublasHandle_t;
typedef void* nvrtcProgram;

enum { errBLAS = 100000, errRTC = 200000 };

static struct {
	CUresult (*init)(unsigned);
	CUresult (*driverGetVersion)(int*);
	CUresult (*deviceGetCount)(int*);
	CUresult (*deviceGet)(CUdevice*, int);
	CUresult (*deviceGetAttribute)(int*, int, CUdevice);
	CUresult (*deviceGetName)(char*, int, CUdevice);
	CUresult (*deviceTotalMem)(size_t*, CUdevice);
	CUresult (*primaryCtxRetain)(CUcontext*, CUdevice);
	CUresult (*ctxSetCurrent)(CUcontext);
	CUresult (*streamCreate)(CUstream*, unsigned);
	CUresult (*streamSynchronize)(CUstream);
	CUresult (*memAllocManaged)(CUdeviceptr*, size_t, unsigned);
	CUresult (*memAlloc)(CUdeviceptr*, size_t);
	CUresult (*memFree)(CUdeviceptr);
	CUresult (*memsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
	CUresult (*memcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
	CUresult (*memcpyHtoDAsync)(CUdeviceptr, const void*, size_t, CUstream);
	CUresult (*memcpyDtoHAsync)(void*, CUdeviceptr, size_t, CUstream);
	CUresult (*memGetInfo)(size_t*, size_t*);
	CUresult (*moduleLoadData)(CUmodule*, const void*);
	CUresult (*moduleGetFunction)(CUfunction*, CUmodule, const char*);
	CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
		unsigned, CUstream, void**, void**);
	CUresult (*getErrorString)(CUresult, const char**);
} cu;

static struct {
	int (*create)(cublasHandle_t*);
	int (*setStream)(cublasHandle_t, CUstream);
	int (*setMathMode)(cublasHandle_t, int);
	int (*sgemm)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
		const float*, int, const float*, float*, int);
	int (*gemmEx)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int,
		const void*, int, int, const void*, void*, int, int, int, int);
} blas;

static struct {
	int (*create)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
	int (*compile)(nvrtcProgram, int, const char* const*);
	int (*logSize)(nvrtcProgram, size_t*);
	int (*log)(nvrtcProgram, char*);
	int (*cubinSize)(nvrtcProgram, size_t*);
	int (*cubin)(nvrtcProgram, char*);
	int (*ptxSize)(nvrtcProgram, size_t*);
	int (*ptx)(nvrtcProgram, char*);
	int (*destroy)(nvrtcProgram*);
	int (*version)(int*, int*);
} rtc;

static CUcontext g_ctx;
static CUstream g_stream;
static CUdevice g_dev;
static cublasHandle_t g_blas;

static void* paca_dlopen(const char* path, int global) {
	return dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
}

static const char* paca_dlerror(void) {
	const char* e = dlerror();
	return e ? e : "unknown dlopen error";
}

// paca_bind looks up every entry point and returns the name of the first
// one missing, or NULL.
static const char* paca_bind(void* hcu, void* hblas, void* hrtc) {
#define BIND(h, field, name) if (!(*(void**)&(field) = dlsym(h, name))) return name
	BIND(hcu, cu.init, "cuInit");
	BIND(hcu, cu.driverGetVersion, "cuDriverGetVersion");
	BIND(hcu, cu.deviceGetCount, "cuDeviceGetCount");
	BIND(hcu, cu.deviceGet, "cuDeviceGet");
	BIND(hcu, cu.deviceGetAttribute, "cuDeviceGetAttribute");
	BIND(hcu, cu.deviceGetName, "cuDeviceGetName");
	BIND(hcu, cu.deviceTotalMem, "cuDeviceTotalMem_v2");
	BIND(hcu, cu.primaryCtxRetain, "cuDevicePrimaryCtxRetain");
	BIND(hcu, cu.ctxSetCurrent, "cuCtxSetCurrent");
	BIND(hcu, cu.streamCreate, "cuStreamCreate");
	BIND(hcu, cu.streamSynchronize, "cuStreamSynchronize");
	BIND(hcu, cu.memAllocManaged, "cuMemAllocManaged");
	BIND(hcu, cu.memAlloc, "cuMemAlloc_v2");
	BIND(hcu, cu.memFree, "cuMemFree_v2");
	BIND(hcu, cu.memsetD32Async, "cuMemsetD32Async");
	BIND(hcu, cu.memcpyAsync, "cuMemcpyAsync");
	BIND(hcu, cu.memcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
	BIND(hcu, cu.memcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
	BIND(hcu, cu.memGetInfo, "cuMemGetInfo_v2");
	BIND(hcu, cu.moduleLoadData, "cuModuleLoadData");
	BIND(hcu, cu.moduleGetFunction, "cuModuleGetFunction");
	BIND(hcu, cu.launchKernel, "cuLaunchKernel");
	BIND(hcu, cu.getErrorString, "cuGetErrorString");
	BIND(hblas, blas.create, "cublasCreate_v2");
	BIND(hblas, blas.setStream, "cublasSetStream_v2");
	BIND(hblas, blas.setMathMode, "cublasSetMathMode");
	BIND(hblas, blas.sgemm, "cublasSgemm_v2");
	BIND(hblas, blas.gemmEx, "cublasGemmEx");
	BIND(hrtc, rtc.create, "nvrtcCreateProgram");
	BIND(hrtc, rtc.compile, "nvrtcCompileProgram");
	BIND(hrtc, rtc.logSize, "nvrtcGetProgramLogSize");
	BIND(hrtc, rtc.log, "nvrtcGetProgramLog");
	BIND(hrtc, rtc.cubinSize, "nvrtcGetCUBINSize");
	BIND(hrtc, rtc.cubin, "nvrtcGetCUBIN");
	BIND(hrtc, rtc.ptxSize, "nvrtcGetPTXSize");
	BIND(hrtc, rtc.ptx, "nvrtcGetPTX");
	BIND(hrtc, rtc.destroy, "nvrtcDestroyProgram");
	BIND(hrtc, rtc.version, "nvrtcVersion");
#undef BIND
	return NULL;
}

static const char* paca_cu_error(int r) {
	const char* s = NULL;
	if (cu.getErrorString == NULL || cu.getErrorString(r, &s) != 0 || s == NULL) return "unknown CUDA error";
	return s;
}

#define CU(call) do { CUresult r_ = (call); if (r_ != 0) return r_; } while (0)
#define CTX() CU(cu.ctxSetCurrent(g_ctx))

// Device attributes (CUdevice_attribute).
enum { attrSMs = 16, attrManaged = 83, attrCCMajor = 75, attrCCMinor = 76, attrConcurrentManaged = 89 };

// paca_open initialises the driver, takes device ordinal's primary
// context, makes a stream and a cuBLAS handle on it, and reports the
// device: info = {driver version, CC major, CC minor, SMs, managed memory,
// concurrent managed access}, its name and total memory.
static int paca_open(int ordinal, int* info, char* name, int namelen, size_t* total, int tf32) {
	int n = 0;
	CU(cu.init(0));
	CU(cu.driverGetVersion(&info[0]));
	CU(cu.deviceGetCount(&n));
	if (ordinal >= n) return 100; // CUDA_ERROR_NO_DEVICE
	CU(cu.deviceGet(&g_dev, ordinal));
	CU(cu.deviceGetAttribute(&info[1], attrCCMajor, g_dev));
	CU(cu.deviceGetAttribute(&info[2], attrCCMinor, g_dev));
	CU(cu.deviceGetAttribute(&info[3], attrSMs, g_dev));
	CU(cu.deviceGetAttribute(&info[4], attrManaged, g_dev));
	CU(cu.deviceGetAttribute(&info[5], attrConcurrentManaged, g_dev));
	CU(cu.deviceGetName(name, namelen, g_dev));
	CU(cu.deviceTotalMem(total, g_dev));
	CU(cu.primaryCtxRetain(&g_ctx, g_dev));
	CTX();
	CU(cu.streamCreate(&g_stream, 1)); // CU_STREAM_NON_BLOCKING
	int s = blas.create(&g_blas);
	if (s == 0) s = blas.setStream(g_blas, g_stream);
	// CUBLAS_DEFAULT_MATH (strict float32) or CUBLAS_TF32_TENSOR_OP_MATH.
	if (s == 0) s = blas.setMathMode(g_blas, tf32 ? 3 : 0);
	return s ? errBLAS + s : 0;
}

static void* paca_alloc(size_t bytes, int managed, int* err) {
	CUdeviceptr p = 0;
	*err = cu.ctxSetCurrent(g_ctx);
	if (*err == 0) *err = managed ? cu.memAllocManaged(&p, bytes, 1) : cu.memAlloc(&p, bytes); // CU_MEM_ATTACH_GLOBAL
	return (void*)(uintptr_t)p;
}

static int paca_free(void* p) { CTX(); return cu.memFree((CUdeviceptr)(uintptr_t)p); }

static int paca_memset32(void* p, unsigned v, size_t n) {
	CTX();
	return cu.memsetD32Async((CUdeviceptr)(uintptr_t)p, v, n, g_stream);
}

static int paca_copy(void* dst, void* src, size_t bytes) {
	CTX();
	return cu.memcpyAsync((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, bytes, g_stream);
}

static int paca_upload(void* dst, const void* src, size_t bytes) {
	CTX();
	return cu.memcpyHtoDAsync((CUdeviceptr)(uintptr_t)dst, src, bytes, g_stream);
}

// paca_download copies device memory to the host and waits for it.
static int paca_download(void* dst, void* src, size_t bytes) {
	CTX();
	CU(cu.memcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src, bytes, g_stream));
	return cu.streamSynchronize(g_stream);
}

static int paca_sync(void) { CTX(); return cu.streamSynchronize(g_stream); }

static int paca_mem_info(size_t* free, size_t* total) { CTX(); return cu.memGetInfo(free, total); }

static int paca_load_module(const void* image, CUmodule* mod) { CTX(); return cu.moduleLoadData(mod, image); }

static int paca_get_function(CUmodule mod, const char* name, CUfunction* f) {
	CTX();
	return cu.moduleGetFunction(f, mod, name);
}

// paca_launch runs f on the stream; args holds one 8-byte slot per kernel
// parameter (4-byte parameters in the low half).
static int paca_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned shmem,
		uint64_t* args, int nargs) {
	void* params[32];
	for (int i = 0; i < nargs && i < 32; i++) params[i] = &args[i];
	CTX();
	return cu.launchKernel(f, gx, gy, gz, bx, 1, 1, shmem, g_stream, params, NULL);
}

// paca_sgemm is cublasSgemm on column-major operands.
static int paca_sgemm(int ta, int tb, int m, int n, int k, float alpha, const void* a, int lda,
		const void* b, int ldb, float beta, void* c, int ldc) {
	CTX();
	int s = blas.sgemm(g_blas, ta, tb, m, n, k, &alpha, (const float*)a, lda, (const float*)b, ldb, &beta, (float*)c, ldc);
	return s ? errBLAS + s : 0;
}

// paca_gemm_half is cublasGemmEx with half-precision a and b (CUDA_R_16BF
// = 14 or CUDA_R_16F = 2), a float32 c and float32 accumulation
// (CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1).
static int paca_gemm_half(int ta, int tb, int m, int n, int k, float alpha, const void* a, int lda,
		const void* b, int ldb, float beta, void* c, int ldc, int dtype) {
	CTX();
	int s = blas.gemmEx(g_blas, ta, tb, m, n, k, &alpha, a, dtype, lda, b, dtype, ldb, &beta, c, 0, ldc, 68, -1);
	return s ? errBLAS + s : 0;
}

// paca_nvrtc compiles src with the options and returns the CUBIN (cubin
// set) or PTX in *out, and the compiler's log in *log (both malloc'd).
static int paca_nvrtc(const char* src, const char** opts, int nopts, int cubin, char** out, size_t* outlen, char** log) {
	nvrtcProgram p;
	*out = NULL;
	*log = NULL;
	int r = rtc.create(&p, src, "paca_kernels.cu", 0, NULL, NULL);
	if (r) return errRTC + r;
	int cr = rtc.compile(p, nopts, opts);
	size_t n = 0;
	if (rtc.logSize(p, &n) == 0 && n > 1) {
		*log = (char*)malloc(n);
		if (*log && rtc.log(p, *log)) (*log)[0] = 0;
	}
	if (cr == 0) {
		r = cubin ? rtc.cubinSize(p, outlen) : rtc.ptxSize(p, outlen);
		if (r == 0) {
			*out = (char*)malloc(*outlen);
			r = cubin ? rtc.cubin(p, *out) : rtc.ptx(p, *out);
		}
	} else {
		r = cr;
	}
	rtc.destroy(&p);
	return r ? errRTC + r : 0;
}

static int paca_nvrtc_version(int* major, int* minor) { return rtc.version(major, minor); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// Error is an error code of a trampoline.
type Error int

const (
	errBLAS = C.errBLAS
	errRTC  = C.errRTC
)

func (e Error) Error() string {
	switch {
	case e >= errRTC:
		return fmt.Sprintf("NVRTC error %d", int(e-errRTC))
	case e >= errBLAS:
		return fmt.Sprintf("cuBLAS status %d", int(e-errBLAS))
	}
	return fmt.Sprintf("%s (CUresult %d)", C.GoString(C.paca_cu_error(C.int(e))), int(e))
}

// must panics on an error of a queued operation: past start-up the CUDA
// backend has no way to report one but to stop.
func must(r C.int) {
	if r != 0 {
		panic(fmt.Sprintf("tensor: CUDA: %v", Error(r)))
	}
}

// Library names, newest first. PACA_CUDA_LIB_PATH (a list of folders, like
// PATH) is searched before the dynamic loader's own path.
var (
	libCUDA   = []string{"libcuda.so.1", "libcuda.so"}
	libCUBLAS = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
	libLt     = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"}
	libNVRTC  = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}
)

// dlopenFirst opens the first of names that loads, trying each folder of
// PACA_CUDA_LIB_PATH and then the loader's search path.
func dlopenFirst(names []string, global bool) (unsafe.Pointer, error) {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("PACA_CUDA_LIB_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	g := C.int(0)
	if global {
		g = 1
	}
	var errs []string
	for _, dir := range append(dirs, "") {
		for _, n := range names {
			path := n
			if dir != "" {
				path = filepath.Join(dir, n)
				if _, err := os.Stat(path); err != nil {
					continue
				}
			}
			cs := C.CString(path)
			h := C.paca_dlopen(cs, g)
			C.free(unsafe.Pointer(cs))
			if h != nil {
				return h, nil
			}
			if dir == "" && len(errs) < 1 {
				errs = append(errs, C.GoString(C.paca_dlerror()))
			}
		}
	}
	return nil, fmt.Errorf("cannot open %s: %s", names[0], strings.Join(errs, "; "))
}

// Device describes the GPU in use.
type Device struct {
	Name          string
	Major, Minor  int // compute capability
	SMs           int
	Driver        int // e.g. 12040 for CUDA 12.4
	TotalMem      int64
	NVRTC         [2]int // major, minor
	ConcurrentUVM bool   // host and device may use managed memory at once
}

// Open loads the libraries, opens device ordinal and makes the stream
// and cuBLAS handle. It fails with a reason a user can act on.
func Open(ordinal int, tf32 bool) (*Device, error) {
	hcu, err := dlopenFirst(libCUDA, false)
	if err != nil {
		return nil, fmt.Errorf("no CUDA driver: %v", err)
	}
	// cuBLAS needs cuBLASLt: load it globally first, so that it is found
	// in a PACA_CUDA_LIB_PATH folder too (else cuBLAS looks for it).
	_, errLt := dlopenFirst(libLt, true)
	hblas, err := dlopenFirst(libCUBLAS, false)
	if err != nil {
		if errLt != nil {
			err = fmt.Errorf("%v; %v", err, errLt)
		}
		return nil, fmt.Errorf("no cuBLAS: %v", err)
	}
	hrtc, err := dlopenFirst(libNVRTC, false)
	if err != nil {
		return nil, fmt.Errorf("no NVRTC: %v", err)
	}
	if missing := C.paca_bind(hcu, hblas, hrtc); missing != nil {
		return nil, fmt.Errorf("CUDA libraries lack %s", C.GoString(missing))
	}
	var info [6]C.int
	var name [256]C.char
	var total C.size_t
	t := C.int(0)
	if tf32 {
		t = 1
	}
	if r := C.paca_open(C.int(ordinal), &info[0], &name[0], C.int(len(name)), &total, t); r != 0 {
		return nil, fmt.Errorf("cannot open GPU %d: %v", ordinal, Error(r))
	}
	d := &Device{Name: C.GoString(&name[0]), Driver: int(info[0]), Major: int(info[1]), Minor: int(info[2]),
		SMs: int(info[3]), TotalMem: int64(total), ConcurrentUVM: info[5] != 0}
	if info[4] == 0 {
		return nil, fmt.Errorf("%s has no managed memory", d.Name)
	}
	var maj, min C.int
	if C.paca_nvrtc_version(&maj, &min) == 0 {
		d.NVRTC = [2]int{int(maj), int(min)}
	}
	return d, nil
}

// Compile compiles src for the device: a CUBIN for its exact architecture
// (--gpu-arch=sm_XY), else PTX for its virtual one (compute_XY), else PTX
// for an older virtual architecture (an NVRTC older than the GPU), which
// the driver compiles for the GPU when loading.
func Compile(src string, major, minor int) (image []byte, how string, err error) {
	cc := 10*major + minor
	tries := []string{fmt.Sprintf("sm_%d", cc), fmt.Sprintf("compute_%d", cc)}
	for _, old := range []int{90, 80, 75} {
		if old < cc {
			tries = append(tries, fmt.Sprintf("compute_%d", old))
		}
	}
	var first error
	for _, arch := range tries {
		opts := []string{"--gpu-arch=" + arch, "--std=c++17", "-default-device"}
		image, err = nvrtcRun(src, opts, strings.HasPrefix(arch, "sm_"))
		if err == nil {
			return image, arch, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, "", first
}

func nvrtcRun(src string, opts []string, cubin bool) ([]byte, error) {
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
		defer C.free(unsafe.Pointer(copts[i]))
	}
	// The option strings are C memory; the array of pointers to them is
	// C memory too, as cgo requires.
	arr := (**C.char)(C.malloc(C.size_t(len(copts)) * C.size_t(unsafe.Sizeof(copts[0]))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(copts)), copts)
	var out, log *C.char
	var n C.size_t
	cb := C.int(0)
	if cubin {
		cb = 1
	}
	r := C.paca_nvrtc(csrc, arr, C.int(len(copts)), cb, &out, &n, &log)
	defer C.free(unsafe.Pointer(out))
	defer C.free(unsafe.Pointer(log))
	if r != 0 {
		msg := ""
		if log != nil {
			msg = strings.TrimSpace(C.GoString(log))
		}
		return nil, fmt.Errorf("%v (%s): %s", Error(r), strings.Join(opts, " "), msg)
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// Module is a loaded module of compiled kernels.
type Module struct{ m C.CUmodule }

func LoadModule(image []byte) (Module, error) {
	p := C.CBytes(image)
	defer C.free(p)
	var m C.CUmodule
	if r := C.paca_load_module(p, &m); r != 0 {
		return Module{}, Error(r)
	}
	return Module{m}, nil
}

// Function returns the kernel called name.
func (m Module) Function(name string) (unsafe.Pointer, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var f C.CUfunction
	if r := C.paca_get_function(m.m, cs, &f); r != 0 {
		return nil, fmt.Errorf("kernel %s: %v", name, Error(r))
	}
	return unsafe.Pointer(f), nil
}

// Memory and the stream.

func Alloc(bytes int, managed bool) (unsafe.Pointer, error) {
	var e C.int
	m := C.int(0)
	if managed {
		m = 1
	}
	p := C.paca_alloc(C.size_t(bytes), m, &e)
	if e != 0 {
		return nil, Error(e)
	}
	if p == nil {
		return nil, errors.New("allocation returned no memory")
	}
	return p, nil
}

func Free(p unsafe.Pointer) { must(C.paca_free(p)) }

func Memset32(p unsafe.Pointer, v uint32, n int) { must(C.paca_memset32(p, C.uint(v), C.size_t(n))) }

func Copy(dst, src unsafe.Pointer, bytes int) { must(C.paca_copy(dst, src, C.size_t(bytes))) }

// Upload queues a copy of bytes of host memory src to device memory dst;
// src may be reused as soon as it returns.
func Upload(dst, src unsafe.Pointer, bytes int) { must(C.paca_upload(dst, src, C.size_t(bytes))) }

// Download copies bytes of device memory src to host memory dst once the
// queued work is done, and waits for the copy.
func Download(dst, src unsafe.Pointer, bytes int) { must(C.paca_download(dst, src, C.size_t(bytes))) }

func Sync() { must(C.paca_sync()) }

func MemInfo() (free, total int64) {
	var f, t C.size_t
	must(C.paca_mem_info(&f, &t))
	return int64(f), int64(t)
}

// Launch runs kernel f over a grid of (gx, gy, gz) blocks of bx threads
// with the first n of args as its parameters.
func Launch(f unsafe.Pointer, gx, gy, gz, bx, shmem int, args *[MaxArgs]uint64, n int) {
	must(C.paca_launch(C.CUfunction(f), C.uint(gx), C.uint(gy), C.uint(gz), C.uint(bx), C.uint(shmem),
		(*C.uint64_t)(unsafe.Pointer(&args[0])), C.int(n)))
}

// MaxArgs is the most parameters a kernel may take.
const MaxArgs = 32

// Sgemm is cublasSgemm on column-major operands (ta, tb: transpose).
func Sgemm(ta, tb bool, m, n, k int, alpha float32, a unsafe.Pointer, lda int, b unsafe.Pointer, ldb int, beta float32, c unsafe.Pointer, ldc int) {
	must(C.paca_sgemm(cbool(ta), cbool(tb), C.int(m), C.int(n), C.int(k), C.float(alpha), a, C.int(lda), b, C.int(ldb), C.float(beta), c, C.int(ldc)))
}

// Half-precision operand types of GemmHalf (cudaDataType).
const (
	BF16 = 14
	F16  = 2
)

// GemmHalf is cublasGemmEx with half-precision a, b of dtype, float32 c
// and float32 accumulation.
func GemmHalf(ta, tb bool, m, n, k int, alpha float32, a unsafe.Pointer, lda int, b unsafe.Pointer, ldb int, beta float32, c unsafe.Pointer, ldc int, dtype int) {
	must(C.paca_gemm_half(cbool(ta), cbool(tb), C.int(m), C.int(n), C.int(k), C.float(alpha), a, C.int(lda), b, C.int(ldb), C.float(beta), c, C.int(ldc), C.int(dtype)))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
