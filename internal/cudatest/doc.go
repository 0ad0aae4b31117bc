// Package cudatest moves a package's tests onto the GPU in a build with
// -tags cuda (see cudatest.go); without the tag it is empty.
package cudatest
