// Command etcd is etcd's own server (etcdmain), built from the Go module proxy at the version
// pinned in go.mod: Debian's etcd 3.4 is too old for the Kubernetes release the testbed runs.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
