package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Ranger is a piece of work over an index range [lo, hi), for Parallel.
type Ranger interface{ Range(lo, hi int) }

// Parallel calls r.Range on contiguous chunks of [0, n), one per core, and
// returns once all are done; the first chunk runs on the calling goroutine.
// Work of fewer than minWork items per chunk runs on the caller alone.
//
// The other chunks run on long-lived worker goroutines, so Parallel itself
// allocates nothing. r is shared with them: pass a pointer to a value that
// is on the heap already and reused (a kernel's argument struct from a free
// list, a field of a long-lived object); a value built for the call escapes
// and costs an allocation.
func Parallel(n, minWork int, r Ranger) {
	workers := runtime.GOMAXPROCS(0)
	if w := n / max(minWork, 1); w < workers {
		workers = w
	}
	if workers <= 1 {
		r.Range(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	g := groups.get()
	for lo := chunk; lo < n; lo += chunk {
		g.wg.Add(1)
		submit(task{r: r, lo: lo, hi: min(lo+chunk, n), g: g})
	}
	r.Range(0, chunk)
	g.wait()
	groups.put(g)
}

// task is one chunk of a Parallel call.
type task struct {
	r      Ranger
	lo, hi int
	g      *group
}

func (t task) run() {
	t.r.Range(t.lo, t.hi)
	t.g.wg.Done()
}

// group is the chunks of one Parallel call still running.
type group struct{ wg sync.WaitGroup }

// wait returns once every chunk of g is done. While chunks wait in the
// queue it runs them itself (any call's), so that a Parallel nested in a
// chunk cannot deadlock with every worker waiting.
func (g *group) wait() {
	for {
		select {
		case t := <-workQueue:
			t.run()
		default:
			g.wg.Wait()
			return
		}
	}
}

var (
	// workQueue feeds the workers. A full queue makes submit run the task
	// on the caller.
	workQueue = make(chan task, 256)
	workers   atomic.Int32
	groups    Jobs[group]
)

// submit hands t to a worker, starting one while there are fewer than
// GOMAXPROCS−1.
func submit(t task) {
	if n := workers.Load(); int(n) < runtime.GOMAXPROCS(0)-1 && workers.CompareAndSwap(n, n+1) {
		go worker()
	}
	select {
	case workQueue <- t:
	default:
		t.run()
	}
}

func worker() {
	for t := range workQueue {
		t.run()
	}
}

// Jobs recycles values of T (the arguments of a parallel kernel), so that
// what workers share need not be allocated per call: see RunJob. The zero
// value is ready to use.
type Jobs[T any] struct {
	mu   sync.Mutex
	free []*T
}

func (f *Jobs[T]) get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := len(f.free); k > 0 {
		v := f.free[k-1]
		f.free = f.free[:k-1]
		return v
	}
	return new(T)
}

func (f *Jobs[T]) put(v *T) {
	f.mu.Lock()
	f.free = append(f.free, v)
	f.mu.Unlock()
}

// RunJob runs a parallel kernel whose arguments are args, a struct whose
// Range method (on *T) is the kernel's loop, over [0, n) with Parallel:
// args is copied into a value recycled from jobs that the workers share,
// and cleared afterwards so that it keeps nothing alive. A kernel written
// this way allocates nothing per call:
//
//	type scaleJob struct{ x []float32; s float32 }
//	func (j *scaleJob) Range(lo, hi int) { for i := lo; i < hi; i++ { j.x[i] *= j.s } }
//	var scaleJobs tensor.Jobs[scaleJob]
//	tensor.RunJob(&scaleJobs, len(x), 4096, scaleJob{x, 2})
func RunJob[T any, P interface {
	*T
	Ranger
}](jobs *Jobs[T], n, minWork int, args T) {
	j := jobs.get()
	*j = args
	Parallel(n, minWork, P(j))
	var zero T
	*j = zero
	jobs.put(j)
}
