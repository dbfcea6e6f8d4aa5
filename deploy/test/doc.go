// Package deploytest checks the packaging of mailstore offline: the Helm
// chart in deploy/helm/mailstore (helm lint --strict and helm template for
// several value sets, and the schema rejecting bad values), the kustomize
// base and dev overlay in deploy/k8s (built with the kustomize library), and
// the Dockerfile. Every rendered object is decoded strictly into the
// Kubernetes API types, so a misspelt or misplaced field fails, and then
// checked for what matters in production: security contexts, probes, the
// drain window, Service types and each target's -config file, which the
// real mailstore binary must accept.
//
// It is its own Go module so that the Kubernetes libraries stay out of the
// main module; scripts/deploy-test.sh installs the pinned helm and runs it.
package deploytest
