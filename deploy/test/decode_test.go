package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// chart writes. The Prometheus Operator's Go types are a heavy module of
// their own; decoding strictly into this struct still fails on any field
// the chart writes that is not here, so add fields here with care, checked
// against the operator's CRD.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects are the decoded output of helm template or kustomize.
type objects struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	PDBs            []*policyv1.PodDisruptionBudget
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	NetworkPolicies []*networkingv1.NetworkPolicy
	ServiceMonitors []*serviceMonitor
	Other           []runtime.Object
}

var strictSerializer = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

var serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}

// decodeAll splits a YAML stream and decodes every document strictly:
// unknown or duplicate fields and wrong types are errors.
func decodeAll(t *testing.T, stream []byte) *objects {
	t.Helper()
	objs := &objects{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("split YAML: %v", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		if tm.GroupVersionKind() == serviceMonitorGVK {
			sm := &serviceMonitor{}
			if err := yaml.UnmarshalStrict(doc, sm); err != nil {
				t.Errorf("ServiceMonitor (document %d) does not decode strictly: %v\n%s", i, err, doc)
				continue
			}
			objs.ServiceMonitors = append(objs.ServiceMonitors, sm)
			continue
		}
		obj, _, err := strictSerializer.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s (document %d) does not decode strictly: %v\n%s", tm.Kind, i, err, doc)
			continue
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			objs.Deployments = append(objs.Deployments, o)
		case *corev1.Service:
			objs.Services = append(objs.Services, o)
		case *corev1.ConfigMap:
			objs.ConfigMaps = append(objs.ConfigMaps, o)
		case *corev1.Secret:
			objs.Secrets = append(objs.Secrets, o)
		case *policyv1.PodDisruptionBudget:
			objs.PDBs = append(objs.PDBs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			objs.HPAs = append(objs.HPAs, o)
		case *networkingv1.NetworkPolicy:
			objs.NetworkPolicies = append(objs.NetworkPolicies, o)
		default:
			objs.Other = append(objs.Other, obj)
		}
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

var (
	targets  = []string{"metadata", "blob", "imap", "pop3", "lmtp"}
	gateways = map[string]bool{"imap": true, "pop3": true, "lmtp": true}
)

// expect is what one rendering must contain beyond the common rules.
type expect struct {
	// targets that must have a Deployment (and no others).
	targets []string
	// preStop sleep, gateway drain window (-server.drain-window) and the
	// margin after it, in seconds.
	preStop, window, margin int64
	// hpa lists the targets with an autoscaler.
	hpa []string
	// serviceMonitor: one must be rendered.
	serviceMonitor bool
	// networkPolicies: one per target must be rendered.
	networkPolicies bool
	// tls: the IMAP and POP3 gateways serve implicit TLS too.
	tls bool
	// gatewayServiceType is the type of the gateways' Services.
	gatewayServiceType corev1.ServiceType
}

func component(m metav1.ObjectMeta) string { return m.Labels["app.kubernetes.io/component"] }

// checkObjects applies the rules every rendering must keep.
func checkObjects(t *testing.T, objs *objects, want expect) {
	t.Helper()
	deps := map[string]*appsv1.Deployment{}
	for _, d := range objs.Deployments {
		if c := component(d.ObjectMeta); c != "" && d.Spec.Template.Spec.Containers[0].Name == "mailstore" {
			deps[c] = d
		}
		checkPodSecurity(t, d)
	}
	if len(deps) != len(want.targets) {
		t.Errorf("mailstore Deployments for %v, want %v", keys(deps), want.targets)
	}
	configs := configFiles(t, objs)
	for _, target := range want.targets {
		d, ok := deps[target]
		if !ok {
			t.Errorf("no Deployment for target %s", target)
			continue
		}
		checkMailstoreDeployment(t, d, target, want, configs)
	}
	checkServices(t, objs, deps, want)
	checkSelectors(t, objs)
	hpa := map[string]bool{}
	for _, h := range objs.HPAs {
		hpa[h.Spec.ScaleTargetRef.Name] = true
		d := findDeployment(objs, h.Spec.ScaleTargetRef.Name)
		switch {
		case d == nil:
			t.Errorf("HPA %s scales Deployment %s, which is not rendered", h.Name, h.Spec.ScaleTargetRef.Name)
		case d.Spec.Replicas != nil:
			t.Errorf("Deployment %s sets replicas although HPA %s scales it", d.Name, h.Name)
		case h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas:
			t.Errorf("HPA %s: minReplicas %v above maxReplicas %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	if len(objs.HPAs) != len(want.hpa) {
		t.Errorf("%d HorizontalPodAutoscalers, want %d (for %v)", len(objs.HPAs), len(want.hpa), want.hpa)
	}
	for _, target := range want.hpa {
		if d := deps[target]; d == nil || !hpa[d.Name] {
			t.Errorf("no HPA for target %s", target)
		}
	}
	if got := len(objs.ServiceMonitors) > 0; got != want.serviceMonitor {
		t.Errorf("ServiceMonitor rendered: %v, want %v", got, want.serviceMonitor)
	}
	for _, sm := range objs.ServiceMonitors {
		if len(sm.Spec.Endpoints) == 0 || sm.Spec.Endpoints[0].Port != "http" {
			t.Errorf("ServiceMonitor %s does not scrape the http port: %+v", sm.Name, sm.Spec.Endpoints)
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatalf("ServiceMonitor %s selector: %v", sm.Name, err)
		}
		scraped := map[string]bool{}
		for _, s := range objs.Services {
			if sel.Matches(labels.Set(s.Labels)) {
				scraped[component(s.ObjectMeta)] = true
			}
		}
		for _, target := range want.targets {
			if !scraped[target] {
				t.Errorf("ServiceMonitor %s selects no Service of target %s", sm.Name, target)
			}
		}
	}
	if want.networkPolicies {
		checkNetworkPolicies(t, objs, deps, want)
	} else if len(objs.NetworkPolicies) != 0 {
		t.Errorf("%d NetworkPolicies rendered, want none", len(objs.NetworkPolicies))
	}
}

// checkPodSecurity checks the securityContext of every container of d.
func checkPodSecurity(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	all := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	for _, c := range all {
		where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", where)
			continue
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", where)
		}
		uid := sc.RunAsUser
		if uid == nil && psc != nil {
			uid = psc.RunAsUser
		}
		if uid == nil || *uid == 0 {
			t.Errorf("%s: no numeric non-root runAsUser", where)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", where)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: capabilities are %+v, want drop [ALL] and no add", where, sc.Capabilities)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil && psc != nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: seccompProfile is %+v, want RuntimeDefault", where, seccomp)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: needs a liveness and a readiness probe", where)
		}
		if c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no memory request", where)
		}
		for _, m := range c.VolumeMounts {
			if findVolume(pod, m.Name) == nil {
				t.Errorf("%s: mounts volume %s, which the pod does not have", where, m.Name)
			}
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("Deployment %s mounts a service account token it does not need", d.Name)
	}
}

// checkMailstoreDeployment checks one target's Deployment.
func checkMailstoreDeployment(t *testing.T, d *appsv1.Deployment, target string, want expect, configs map[string]map[string]string) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	if !contains(c.Args, "-target="+target) {
		t.Errorf("Deployment %s: args %q lack -target=%s", d.Name, args, target)
	}
	var configPath string
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "-config="); ok {
			configPath = p
		}
	}
	if configPath == "" {
		t.Errorf("Deployment %s: args %q lack -config", d.Name, args)
	} else {
		// The file must come from a ConfigMap that has it.
		content, ok := mountedConfig(pod, c, configPath, configs)
		if !ok {
			t.Errorf("Deployment %s: %s is not a key of a rendered ConfigMap mounted there", d.Name, configPath)
		} else {
			checkConfig(t, target, content)
		}
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "http" {
		t.Errorf("Deployment %s: liveness probe %+v, want GET /healthz on port http", d.Name, p)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "http" {
		t.Errorf("Deployment %s: readiness probe %+v, want GET /readyz on port http", d.Name, p)
	}
	if findPort(c, "http") == nil || findPort(c, "http").ContainerPort != 9200 {
		t.Errorf("Deployment %s: no http port 9200", d.Name)
	}
	// The drain: preStop sleep, then SIGTERM and the drain window.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Errorf("Deployment %s: no preStop sleep", d.Name)
	} else if got := c.Lifecycle.PreStop.Sleep.Seconds; got != want.preStop {
		t.Errorf("Deployment %s: preStop sleeps %ds, want %d", d.Name, got, want.preStop)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g != want.preStop+want.window+want.margin {
		t.Errorf("Deployment %s: terminationGracePeriodSeconds %v, want preStop %d + drain window %d + margin %d",
			d.Name, deref(g), want.preStop, want.window, want.margin)
	}
	if gateways[target] {
		if got, w := configs[target+".yaml"]["server.drain-window"], fmt.Sprintf("%ds", want.window); got != w {
			t.Errorf("%s.yaml: server.drain-window %q, want %q (the window inside the grace period)", target, got, w)
		}
	}
	// A read-only root needs writable emptyDirs.
	tmp := findMount(c, "/tmp")
	if tmp == nil || findVolume(pod, tmp.Name) == nil || findVolume(pod, tmp.Name).EmptyDir == nil {
		t.Errorf("Deployment %s: /tmp is not an emptyDir", d.Name)
	}
	if target == "imap" || target == "lmtp" {
		dir := configs[target+".yaml"]["ingest.spool-dir"]
		m := findMount(c, dir)
		if dir == "" || m == nil || findVolume(pod, m.Name).EmptyDir == nil {
			t.Errorf("Deployment %s: the spool dir %q is not an emptyDir", d.Name, dir)
		}
	}
	if want.tls && (target == "imap" || target == "pop3") {
		if findPort(c, target+"s") == nil {
			t.Errorf("Deployment %s: no %ss port although TLS is on", d.Name, target)
		}
	}
}

// checkConfig checks a target's -config file and has the binary read it.
func checkConfig(t *testing.T, target, content string) {
	t.Helper()
	var cfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(content), &cfg); err != nil {
		t.Errorf("%s.yaml is not YAML: %v", target, err)
		return
	}
	for k, v := range cfg {
		if strings.HasSuffix(k, "listen-address") && !strings.HasPrefix(fmt.Sprint(v), "0.0.0.0:") {
			t.Errorf("%s.yaml: %s is %v: in a pod it must listen on 0.0.0.0", target, k, v)
		}
	}
	if fmt.Sprint(cfg["server.http-listen-address"]) != "0.0.0.0:9200" {
		t.Errorf("%s.yaml: server.http-listen-address is %v, want 0.0.0.0:9200", target, cfg["server.http-listen-address"])
	}
	if want := map[string]string{"imap": "imap.listen-address", "pop3": "pop3.listen-address", "lmtp": "lmtp.listen-address",
		"metadata": "metadata.listen-address", "blob": "blob.listen-address"}[target]; cfg[want] == nil {
		t.Errorf("%s.yaml sets no %s", target, want)
	}
	if gateways[target] {
		for _, k := range []string{"metadata.address", "blob.address"} {
			if !strings.HasPrefix(fmt.Sprint(cfg[k]), "dns:///") {
				t.Errorf("%s.yaml: %s is %v, want a dns:/// address (balanced over the headless Service)", target, k, cfg[k])
			}
		}
	}
	switch target {
	case "metadata":
		if cfg["metadata.backend"] != "redis" {
			t.Errorf("metadata.yaml: backend %v, want redis", cfg["metadata.backend"])
		}
	case "blob":
		if cfg["blob.backend"] != "s3" {
			t.Errorf("blob.yaml: backend %v, want s3", cfg["blob.backend"])
		}
	}
	checkConfigFile(t, target, content)
}

// checkServices checks Service types and that every port leads somewhere.
func checkServices(t *testing.T, objs *objects, deps map[string]*appsv1.Deployment, want expect) {
	t.Helper()
	grpc := map[string]bool{}
	public := map[string]bool{}
	for _, s := range objs.Services {
		c := component(s.ObjectMeta)
		d := deps[c]
		if d == nil {
			continue
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s does not select the pods of Deployment %s", s.Name, d.Name)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.String() != "" && p.TargetPort.Type == intstr.String && findPort(d.Spec.Template.Spec.Containers[0], p.TargetPort.StrVal) == nil {
				t.Errorf("Service %s port %s targets %s, which Deployment %s does not name", s.Name, p.Name, p.TargetPort.StrVal, d.Name)
			}
		}
		switch {
		case c == "metadata" || c == "blob":
			if s.Spec.ClusterIP != corev1.ClusterIPNone || s.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("Service %s of the %s gRPC API is %s/%s, want headless ClusterIP", s.Name, c, s.Spec.Type, s.Spec.ClusterIP)
			}
			if portNamed(s.Spec.Ports, "grpc") != nil {
				grpc[c] = true
			}
		case portNamed(s.Spec.Ports, c) != nil:
			public[c] = true
			if s.Spec.Type != want.gatewayServiceType {
				t.Errorf("Service %s is %s, want %s", s.Name, s.Spec.Type, want.gatewayServiceType)
			}
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort {
				if s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
					t.Errorf("Service %s: externalTrafficPolicy %q, want Local", s.Name, s.Spec.ExternalTrafficPolicy)
				}
			}
			if want.tls && (c == "imap" || c == "pop3") && portNamed(s.Spec.Ports, c+"s") == nil {
				t.Errorf("Service %s has no %ss port although TLS is on", s.Name, c)
			}
		}
	}
	for _, target := range want.targets {
		if (target == "metadata" || target == "blob") && !grpc[target] {
			t.Errorf("no headless gRPC Service for %s", target)
		}
		if gateways[target] && !public[target] {
			t.Errorf("no client Service for gateway %s", target)
		}
	}
}

// checkSelectors checks that PDBs select pods of some Deployment.
func checkSelectors(t *testing.T, objs *objects) {
	t.Helper()
	for _, p := range objs.PDBs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatalf("PDB %s: %v", p.Name, err)
		}
		n := 0
		for _, d := range objs.Deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PDB %s selects the pods of %d Deployments, want 1", p.Name, n)
		}
		if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
			t.Errorf("PDB %s has neither maxUnavailable nor minAvailable", p.Name)
		}
	}
}

// checkNetworkPolicies checks that every target is isolated and that the
// allowed paths are the designed ones.
func checkNetworkPolicies(t *testing.T, objs *objects, deps map[string]*appsv1.Deployment, want expect) {
	t.Helper()
	for _, target := range want.targets {
		d := deps[target]
		var np *networkingv1.NetworkPolicy
		for _, p := range objs.NetworkPolicies {
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			if err != nil {
				t.Fatalf("NetworkPolicy %s: %v", p.Name, err)
			}
			if d != nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				np = p
			}
		}
		if np == nil {
			t.Errorf("no NetworkPolicy selects the %s pods", target)
			continue
		}
		if len(np.Spec.PolicyTypes) != 2 {
			t.Errorf("NetworkPolicy %s: policyTypes %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
		}
		// Named ports must exist on the pods.
		c := d.Spec.Template.Spec.Containers[0]
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if p.Port != nil && p.Port.Type == intstr.String && findPort(c, p.Port.StrVal) == nil {
					t.Errorf("NetworkPolicy %s allows port %s, which the %s pods do not name", np.Name, p.Port.StrVal, target)
				}
			}
		}
		// Who may reach the gRPC APIs, and where the gateways may go.
		switch target {
		case "metadata", "blob":
			from := ingressComponents(np, "grpc")
			for _, g := range want.targets {
				if gateways[g] && !from[g] {
					t.Errorf("NetworkPolicy %s: gateway %s may not reach %s", np.Name, g, target)
				}
			}
			if target == "blob" && !from["metadata"] {
				t.Errorf("NetworkPolicy %s: metadata may not reach blob (sweeper, recovery)", np.Name)
			}
		default:
			to := egressPorts(np)
			if !to[9201] || !to[9202] {
				t.Errorf("NetworkPolicy %s: gateway %s may not reach metadata (9201) and blob (9202): %v", np.Name, target, to)
			}
		}
		if !egressPorts(np)[53] {
			t.Errorf("NetworkPolicy %s: no DNS egress", np.Name)
		}
	}
}

func ingressComponents(np *networkingv1.NetworkPolicy, port string) map[string]bool {
	out := map[string]bool{}
	for _, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 || r.Ports[0].Port == nil || r.Ports[0].Port.String() != port {
			continue
		}
		for _, peer := range r.From {
			if peer.PodSelector == nil {
				continue
			}
			for _, e := range peer.PodSelector.MatchExpressions {
				if e.Key == "app.kubernetes.io/component" {
					for _, v := range e.Values {
						out[v] = true
					}
				}
			}
			if c := peer.PodSelector.MatchLabels["app.kubernetes.io/component"]; c != "" {
				out[c] = true
			}
		}
	}
	return out
}

func egressPorts(np *networkingv1.NetworkPolicy) map[int32]bool {
	out := map[int32]bool{}
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			if p.Port != nil {
				out[p.Port.IntVal] = true
			}
		}
	}
	return out
}

// configFiles gathers the keys of every rendered ConfigMap, as
// "name/key" and, for the -config files, "key" with its parsed content.
func configFiles(t *testing.T, objs *objects) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, cm := range objs.ConfigMaps {
		for k, v := range cm.Data {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(v), &m); err != nil {
				continue
			}
			flat := map[string]string{}
			for mk, mv := range m {
				flat[mk] = scalar(mv)
			}
			out[k] = flat
			out[cm.Name+"/"+k] = map[string]string{"": v}
		}
	}
	return out
}

// mountedConfig finds the content of path through the container's mounts.
func mountedConfig(pod corev1.PodSpec, c corev1.Container, path string, configs map[string]map[string]string) (string, bool) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		v := findVolume(pod, m.Name)
		if v == nil || v.ConfigMap == nil {
			return "", false
		}
		key := rel
		for _, it := range v.ConfigMap.Items {
			if it.Path == rel {
				key = it.Key
			}
		}
		f, ok := configs[v.ConfigMap.Name+"/"+key]
		return f[""], ok
	}
	return "", false
}

// scalar formats a YAML value as the -config loader does; numbers come
// back from sigs.k8s.io/yaml as float64.
func scalar(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func findDeployment(objs *objects, name string) *appsv1.Deployment {
	for _, d := range objs.Deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func findVolume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func findMount(c corev1.Container, path string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func findPort(c corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

func portNamed(ports []corev1.ServicePort, name string) *corev1.ServicePort {
	for i := range ports {
		if ports[i].Name == name {
			return &ports[i]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
