package deploy

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/zabkeeper/zabkeeper/server"
)

// manifests are the decoded objects of deploy/kubernetes, by kind.
type manifests struct {
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
	secrets      []*corev1.Secret
}

// docSeparator splits a multi-document YAML file.
var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes every document of every YAML file in dir strictly:
// an unknown or misspelt field, a wrong type or a duplicate key is an error.
func loadManifests(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no manifests in %s", dir)
	var m manifests
	for _, file := range files {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		for i, doc := range docSeparator.Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", filepath.Base(file), i+1)
			var tm metav1.TypeMeta
			require.NoError(t, yaml.Unmarshal([]byte(doc), &tm), where)
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 ConfigMap":
				o := new(corev1.ConfigMap)
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1 Service":
				o := new(corev1.Service)
				m.services, obj = append(m.services, o), o
			case "apps/v1 StatefulSet":
				o := new(appsv1.StatefulSet)
				m.statefulSets, obj = append(m.statefulSets, o), o
			case "v1 Secret":
				o := new(corev1.Secret)
				m.secrets, obj = append(m.secrets, o), o
			case "policy/v1 PodDisruptionBudget":
				o := new(policyv1.PodDisruptionBudget)
				m.pdbs, obj = append(m.pdbs, o), o
			default:
				t.Fatalf("%s: unexpected kind %q of apiVersion %q", where, tm.Kind, tm.APIVersion)
			}
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), obj), where)
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// The strict decoder must be strict, or every check below is hollow.
func TestStrictDecodingRejectsTypos(t *testing.T) {
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  publishNotReadyAdresses: true\n")
	require.ErrorContains(t, yaml.UnmarshalStrict(doc, new(corev1.Service)), "publishNotReadyAdresses")
	doc = []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - port: \"2181x\"\n")
	require.Error(t, yaml.UnmarshalStrict(doc, new(corev1.Service)))
}

// makeVar returns the default of a "NAME ?= value" line of the Makefile.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*\?=\s*(\S+)\s*$`)
	m := re.FindSubmatch(raw)
	require.NotNil(t, m, "Makefile has no %s ?= line", name)
	return string(m[1])
}

// dockerfile holds what the other files must agree with in the Dockerfile.
type dockerfile struct {
	user       string   // USER
	entrypoint []string // ENTRYPOINT, exec form
	exposed    []int    // EXPOSE
	volumes    []string // VOLUME, exec form
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("docker/Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	var d dockerfile
	sc := bufio.NewScanner(f)
	jsonList := func(s string) []string {
		var out []string
		require.NoError(t, yaml.Unmarshal([]byte(s), &out), "exec form %s", s)
		return out
	}
	for sc.Scan() {
		instr, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch instr {
		case "USER":
			d.user = arg
		case "ENTRYPOINT":
			d.entrypoint = jsonList(arg)
		case "VOLUME":
			d.volumes = jsonList(arg)
		case "EXPOSE":
			for _, p := range strings.Fields(arg) {
				n, err := strconv.Atoi(p)
				require.NoError(t, err, "EXPOSE %s", p)
				d.exposed = append(d.exposed, n)
			}
		}
	}
	require.NoError(t, sc.Err())
	return d
}

// configPath returns the --config argument of a command line.
func configPath(t *testing.T, args []string) string {
	t.Helper()
	i := slices.Index(args, "--config")
	require.True(t, i >= 0 && i+1 < len(args), "no --config in %q", args)
	return args[i+1]
}

// parseZooCfg reads a zoo.cfg with the server's own parser and insists that
// it knows every key: a misspelt key is otherwise only a warning at start.
func parseZooCfg(t *testing.T, what, text string) server.Config {
	t.Helper()
	cfg, err := server.ParseConfig(strings.NewReader(text), nil)
	require.NoError(t, err, what)
	require.Empty(t, cfg.Unknown, "%s: keys the server does not know", what)
	return cfg
}

// adminPort is the admin server's port a zoo.cfg asks for; the probes
// need the admin server enabled.
func adminPort(t *testing.T, cfg server.Config) int {
	t.Helper()
	require.True(t, cfg.AdminEnableServer, "admin.enableServer: the probes and metrics need the admin server")
	require.NotZero(t, cfg.AdminServerPort)
	ip := net.ParseIP(cfg.AdminServerAddress)
	require.False(t, ip != nil && ip.IsLoopback(), "admin.serverAddress %s: the kubelet and published ports cannot reach loopback", cfg.AdminServerAddress)
	return cfg.AdminServerPort
}

func containerPort(t *testing.T, c corev1.Container, name string) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// resolvePort turns a Service targetPort or probe port (a number or a port
// name) into the container's port number.
func resolvePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	return containerPort(t, c, p.StrVal)
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t, "kubernetes")
	require.Len(t, m.statefulSets, 1)
	require.Len(t, m.configMaps, 1)
	require.Len(t, m.pdbs, 1)
	sts, cm, pdb := m.statefulSets[0], m.configMaps[0], m.pdbs[0]
	pod := sts.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	podLabels := sts.Spec.Template.Labels
	df := readDockerfile(t)

	// The selector selects the pods it manages.
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	require.NoError(t, err)
	require.True(t, sel.Matches(labels.Set(podLabels)), "StatefulSet selector vs pod labels")

	// The image is the one make image builds; it is never pulled from a
	// registry that has none.
	require.Equal(t, makeVar(t, "IMAGE"), c.Image, "image name vs Makefile IMAGE")
	require.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)

	// zoo.cfg: mounted from the ConfigMap where the image's entrypoint reads it.
	cfgFile := configPath(t, append(append([]string{}, df.entrypoint...), c.Args...))
	cfgMount := mountFor(t, c, pod, func(v corev1.Volume) bool {
		return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
	})
	require.Equal(t, path.Dir(cfgFile), cfgMount.MountPath, "ConfigMap mount vs --config %s", cfgFile)
	cfgText, ok := cm.Data[path.Base(cfgFile)]
	require.True(t, ok, "ConfigMap %s has no key %s", cm.Name, path.Base(cfgFile))
	// zoo.cfg's ${VAR}s come from the pod's environment; the pod read is
	// one beyond the server.N lines, a pod of a scale-up.
	require.NotNil(t, sts.Spec.Replicas)
	podName := fmt.Sprintf("%s-%d", sts.Name, *sts.Spec.Replicas)
	setPodEnv(t, m, c, podName)
	cfg := parseZooCfg(t, "ConfigMap "+cm.Name, cfgText)
	checkAutoJoin(t, m, sts, c, cfg, podName)

	// One ConfigMap for every pod: ids come from host names (pod names).
	require.True(t, cfg.MyIDFromHostnameOrdinal, "myidFromHostnameOrdinal=true is what lets one ConfigMap serve every pod")

	// dataDir is the volume claimed per pod, and the image's volume.
	dataMount := mountFor(t, c, pod, nil)
	require.Equal(t, cfg.DataDir, dataMount.MountPath, "dataDir vs the volumeClaimTemplate's mount")
	require.Equal(t, cfg.DataDir, cfg.DataLogDir, "the txn log must be on the claimed volume too")
	require.Contains(t, df.volumes, cfg.DataDir, "dataDir vs the Dockerfile's VOLUME")
	require.False(t, dataMount.ReadOnly)

	// server.N lines: one per replica, named by the headless Service.
	hs := serviceNamed(t, m, sts.Spec.ServiceName)
	require.Equal(t, corev1.ClusterIPNone, hs.Spec.ClusterIP, "governing Service must be headless")
	require.True(t, hs.Spec.PublishNotReadyAddresses, "peers must find each other before any is ready")
	require.NotNil(t, sts.Spec.Replicas)
	replicas := int(*sts.Spec.Replicas)
	require.Equal(t, 1, replicas%2, "an odd number of voters")
	require.Len(t, cfg.Servers, replicas, "server.N lines vs replicas")
	for i := range replicas {
		spec, ok := cfg.Servers[i+1]
		require.True(t, ok, "no server.%d for pod %s-%d", i+1, sts.Name, i)
		require.False(t, spec.Observer)
		require.Equal(t, fmt.Sprintf("%s-%d.%s", sts.Name, i, hs.Name), spec.Host, "server.%d host", i+1)
		require.Equal(t, containerPort(t, c, "quorum"), spec.QuorumPort, "server.%d quorum port", i+1)
		require.Equal(t, containerPort(t, c, "election"), spec.ElectionPort, "server.%d election port", i+1)
		require.Equal(t, servicePort(t, hs, c, "quorum"), spec.QuorumPort)
		require.Equal(t, servicePort(t, hs, c, "election"), spec.ElectionPort)
	}

	// Ports.
	require.Equal(t, cfg.ClientPort, containerPort(t, c, "client"))
	admin := adminPort(t, cfg)
	require.Equal(t, admin, containerPort(t, c, "admin"))
	for _, p := range c.Ports {
		require.Contains(t, df.exposed, int(p.ContainerPort), "port %s not EXPOSEd by the image", p.Name)
	}
	var cs *corev1.Service
	for _, s := range m.services {
		if s.Name != hs.Name {
			cs = s
		}
		require.NotEmpty(t, s.Spec.Selector, "Service %s has no selector", s.Name)
		require.True(t, labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(podLabels)), "Service %s selects no pod", s.Name)
	}
	require.NotNil(t, cs, "a client Service")
	require.False(t, cs.Spec.PublishNotReadyAddresses, "clients only to servers in a quorum")
	require.Equal(t, cfg.ClientPort, servicePort(t, cs, c, "client"))

	// Probes: on the admin port, readiness = in a quorum, liveness = alive.
	probe := func(name string, p *corev1.Probe, wantPath string) {
		require.NotNil(t, p, name)
		require.NotNil(t, p.HTTPGet, "%s must be an HTTP probe", name)
		require.Equal(t, wantPath, p.HTTPGet.Path, name)
		require.Equal(t, admin, resolvePort(t, c, p.HTTPGet.Port), "%s port vs admin.serverPort", name)
	}
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("livenessProbe", c.LivenessProbe, "/livez")
	if c.StartupProbe != nil {
		probe("startupProbe", c.StartupProbe, "/livez")
	}

	// Start together (a server is ready only in a quorum), roll one by one.
	require.Equal(t, appsv1.ParallelPodManagement, sts.Spec.PodManagementPolicy)
	require.Equal(t, appsv1.RollingUpdateStatefulSetStrategyType, sts.Spec.UpdateStrategy.Type)

	// The leader hands over on SIGTERM: the grace period must cover a
	// follower's sync to the new leader (initLimit ticks).
	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	require.GreaterOrEqual(t, *pod.TerminationGracePeriodSeconds*1000, int64(cfg.InitLimit*cfg.TickTime),
		"terminationGracePeriodSeconds vs initLimit*tickTime")

	// A disruption budget of one, over the same pods.
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	require.Equal(t, intstr.FromInt32(1), *pdb.Spec.MaxUnavailable)
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	require.NoError(t, err)
	require.True(t, psel.Matches(labels.Set(podLabels)), "PodDisruptionBudget selects no pod")

	// Anti-affinity: one server per node.
	require.NotNil(t, pod.Affinity)
	require.NotNil(t, pod.Affinity.PodAntiAffinity)
	terms := pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	require.NotEmpty(t, terms)
	require.Equal(t, corev1.LabelHostname, terms[0].TopologyKey)
	asel, err := metav1.LabelSelectorAsSelector(terms[0].LabelSelector)
	require.NoError(t, err)
	require.True(t, asel.Matches(labels.Set(podLabels)), "anti-affinity selects no pod")

	// A restricted security context, as the image runs it.
	psc, csc := pod.SecurityContext, c.SecurityContext
	require.NotNil(t, psc)
	require.NotNil(t, csc)
	require.True(t, psc.RunAsNonRoot != nil && *psc.RunAsNonRoot, "runAsNonRoot")
	uid, gid, _ := strings.Cut(df.user, ":")
	require.NotNil(t, psc.RunAsUser)
	require.Equal(t, uid, strconv.FormatInt(*psc.RunAsUser, 10), "runAsUser vs the Dockerfile's USER")
	require.NotNil(t, psc.FSGroup)
	require.Equal(t, gid, strconv.FormatInt(*psc.FSGroup, 10), "fsGroup (the volume's group) vs the Dockerfile's USER")
	require.NotNil(t, psc.SeccompProfile)
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	require.True(t, csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem")
	require.True(t, csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation, "allowPrivilegeEscalation: false")
	require.NotNil(t, csc.Capabilities)
	require.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop)
	require.Empty(t, csc.Capabilities.Add)
	require.True(t, csc.Privileged == nil || !*csc.Privileged)

	// Resources: requests set, a memory limit above the request.
	req, lim := c.Resources.Requests, c.Resources.Limits
	require.False(t, req.Cpu().IsZero(), "cpu request")
	require.False(t, req.Memory().IsZero(), "memory request")
	require.False(t, lim.Memory().IsZero(), "memory limit")
	require.Positive(t, lim.Memory().Cmp(*req.Memory()), "memory limit above the request")
}

// setPodEnv sets, for the test, the environment a pod named podName of
// container c gets: plain values, Secret keys, and HOSTNAME (the pod's
// name). A zoo.cfg ${VAR} nothing sets fails the parse.
func setPodEnv(t *testing.T, m manifests, c corev1.Container, podName string) {
	t.Helper()
	t.Setenv("HOSTNAME", podName)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			t.Setenv(e.Name, secretValue(t, m, ref.Name, ref.Key))
		}
	}
}

// secretValue is a key of a Secret of the manifests.
func secretValue(t *testing.T, m manifests, name, key string) string {
	t.Helper()
	for _, s := range m.secrets {
		if s.Name != name {
			continue
		}
		if v, ok := s.StringData[key]; ok {
			return v
		}
		v, ok := s.Data[key]
		require.True(t, ok, "Secret %s has no key %s", name, key)
		return string(v)
	}
	t.Fatalf("no Secret %s in the manifests", name)
	return ""
}

// checkAutoJoin checks the scaling setup: autojoin on with reconfig, the
// reconfig credential matching the super user's digest, a joining pod's
// own line named by the headless Service on the container's ports, and
// volumes that leave with a scaled-away pod.
func checkAutoJoin(t *testing.T, m manifests, sts *appsv1.StatefulSet, c corev1.Container, cfg server.Config, podName string) {
	t.Helper()
	require.True(t, cfg.AutoJoin.Enabled, "zabkeeper.autojoin on: kubectl scale needs no hand-run command")
	require.True(t, cfg.Dynamic.ReconfigEnabled, "autojoin needs reconfigEnabled=true")
	user, password, ok := strings.Cut(cfg.AutoJoin.Digest, ":")
	require.True(t, ok, "zabkeeper.autojoin.digest is user:password")
	sum := sha1.Sum([]byte(user + ":" + password))
	require.Equal(t, user+":"+base64.StdEncoding.EncodeToString(sum[:]), cfg.SuperDigest,
		"the reconfig credential vs the super user's digest")
	cfg.ServerID = int(*sts.Spec.Replicas) + 1
	self, err := cfg.AutoJoinSelf()
	require.NoError(t, err)
	require.Equal(t, podName+"."+sts.Spec.ServiceName, self.Host, "a joining pod's line names it by the headless Service")
	require.Equal(t, containerPort(t, c, "quorum"), self.QuorumPort)
	require.Equal(t, containerPort(t, c, "election"), self.ElectionPort)
	require.Equal(t, containerPort(t, c, "client"), self.ClientPort)
	require.Len(t, cfg.AutoJoinSeeds(), int(*sts.Spec.Replicas), "seeds: the first members' client addresses")
	p := sts.Spec.PersistentVolumeClaimRetentionPolicy
	require.NotNil(t, p, "persistentVolumeClaimRetentionPolicy")
	require.Equal(t, appsv1.DeletePersistentVolumeClaimRetentionPolicyType, p.WhenScaled,
		"a scaled-away pod's volume goes with it: a later scale-up is a new server, not a removed one")
	require.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, p.WhenDeleted)
}

// mountFor finds the container's mount of the pod volume that match selects,
// or, when match is nil, of the StatefulSet's claimed volume "data".
func mountFor(t *testing.T, c corev1.Container, pod corev1.PodSpec, match func(corev1.Volume) bool) corev1.VolumeMount {
	t.Helper()
	name := "data"
	if match != nil {
		name = ""
		for _, v := range pod.Volumes {
			if match(v) {
				name = v.Name
			}
		}
		require.NotEmpty(t, name, "no matching pod volume")
	}
	for _, vm := range c.VolumeMounts {
		if vm.Name == name {
			return vm
		}
	}
	t.Fatalf("container %s does not mount volume %q", c.Name, name)
	return corev1.VolumeMount{}
}

func serviceNamed(t *testing.T, m manifests, name string) *corev1.Service {
	t.Helper()
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %q", name)
	return nil
}

// servicePort returns the container port a Service's port of that name
// reaches.
func servicePort(t *testing.T, s *corev1.Service, c corev1.Container, name string) int {
	t.Helper()
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			require.Equal(t, resolvePort(t, c, p.TargetPort), int(p.Port), "Service %s port %s: port and target differ", s.Name, name)
			return resolvePort(t, c, p.TargetPort)
		}
	}
	t.Fatalf("Service %s has no port %q", s.Name, name)
	return 0
}

func TestKubernetesStatefulSetClaimsData(t *testing.T) {
	m := loadManifests(t, "kubernetes")
	sts := m.statefulSets[0]
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	vct := sts.Spec.VolumeClaimTemplates[0]
	require.Equal(t, "data", vct.Name)
	require.Contains(t, vct.Spec.AccessModes, corev1.ReadWriteOnce)
	require.False(t, vct.Spec.Resources.Requests.Storage().IsZero(), "a storage request")
}

// composeFile is the part of deploy/compose/docker-compose.yml checked here
// (docker-compose itself validates the rest: `docker-compose config` in the
// container tests).
type composeFile struct {
	Version  string `json:"version"`
	Services map[string]struct {
		Image    string   `json:"image"`
		Hostname string   `json:"hostname"`
		Volumes  []string `json:"volumes"`
		Ports    []string `json:"ports"`
	} `json:"services"`
}

// composeDefault expands ${VAR:-default} to its default.
var composeDefault = regexp.MustCompile(`\$\{[A-Za-z0-9_]+:-([^}]*)\}`)

func TestComposeEnsemble(t *testing.T) {
	raw, err := os.ReadFile("compose/docker-compose.yml")
	require.NoError(t, err)
	var f composeFile
	require.NoError(t, yaml.Unmarshal(raw, &f))
	cfgText, err := os.ReadFile("compose/zoo.cfg")
	require.NoError(t, err)
	cfg := parseZooCfg(t, "compose/zoo.cfg", string(cfgText))
	require.True(t, cfg.MyIDFromHostnameOrdinal, "one zoo.cfg for all servers needs myidFromHostnameOrdinal=true")
	df := readDockerfile(t)
	cfgFile := configPath(t, df.entrypoint)
	admin := adminPort(t, cfg)

	require.Len(t, f.Services, len(cfg.Servers))
	for i := range len(cfg.Servers) {
		name := fmt.Sprintf("zk-%d", i)
		svc, ok := f.Services[name]
		require.True(t, ok, "no service %s", name)
		require.Equal(t, name, svc.Hostname, "the host name gives the server id")
		require.Equal(t, name, cfg.Servers[i+1].Host, "server.%d host", i+1)
		require.Equal(t, makeVar(t, "IMAGE"), composeDefault.ReplaceAllString(svc.Image, "$1"), "image vs Makefile IMAGE")
		require.Contains(t, svc.Volumes, "./zoo.cfg:"+cfgFile+":ro", "zoo.cfg mounted where the entrypoint reads it")
		require.Contains(t, svc.Volumes, name+"-data:"+cfg.DataDir, "a named volume on dataDir")
		var published []int
		for _, p := range svc.Ports {
			p = composeDefault.ReplaceAllString(p, "$1")
			parts := strings.Split(p, ":")
			require.Len(t, parts, 3, "port %s: want 127.0.0.1:host:container", p)
			require.Equal(t, "127.0.0.1", parts[0], "ports are published on loopback only")
			n, err := strconv.Atoi(parts[2])
			require.NoError(t, err)
			published = append(published, n)
		}
		slices.Sort(published)
		require.Equal(t, []int{cfg.ClientPort, admin}, published, "%s publishes the client and admin ports", name)
	}
}

// The image's own default zoo.cfg must be one the server reads without a
// warning.
func TestImageDefaultConfig(t *testing.T) {
	raw, err := os.ReadFile("docker/zoo.cfg")
	require.NoError(t, err)
	cfg := parseZooCfg(t, "docker/zoo.cfg", string(raw))
	df := readDockerfile(t)
	require.Contains(t, df.volumes, cfg.DataDir)
	require.Contains(t, df.exposed, cfg.ClientPort)
	require.Contains(t, df.exposed, adminPort(t, cfg))
	require.Equal(t, "/conf/zoo.cfg", configPath(t, df.entrypoint))
	require.Regexp(t, `^\d+:\d+$`, df.user, "USER numeric uid:gid, no passwd lookup needed")
	require.NotEqual(t, "0", strings.Split(df.user, ":")[0], "not root")
}

// A misspelt zoo.cfg key must fail parseZooCfg's check, or the config
// checks above are hollow: the server itself only warns about it.
func TestMisspeltConfigKeyIsCaught(t *testing.T) {
	cfg, err := server.ParseConfig(strings.NewReader("myidFromHostnameOrdnal=true\n"), nil)
	require.NoError(t, err)
	require.Contains(t, cfg.Unknown, "myidFromHostnameOrdnal")
	require.False(t, cfg.MyIDFromHostnameOrdinal)
}

// TestComposeScale checks deploy/compose/scale: three servers in zoo.cfg's
// server.N lines and two more that join by themselves, autojoin and
// reconfig on with a credential matching the super user's digest.
func TestComposeScale(t *testing.T) {
	raw, err := os.ReadFile("compose/scale/docker-compose.yml")
	require.NoError(t, err)
	var f struct {
		Services map[string]struct {
			Hostname    string            `json:"hostname"`
			Volumes     []string          `json:"volumes"`
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &f))
	require.Len(t, f.Services, 5)
	cfgText, err := os.ReadFile("compose/scale/zoo.cfg")
	require.NoError(t, err)
	cfgFile := configPath(t, readDockerfile(t).entrypoint)
	for i := range 5 {
		name := fmt.Sprintf("zk-%d", i)
		svc, ok := f.Services[name]
		require.True(t, ok, "no service %s", name)
		require.Equal(t, name, svc.Hostname)
		require.Contains(t, svc.Volumes, "./zoo.cfg:"+cfgFile+":ro")
		t.Setenv("HOSTNAME", name) // Docker sets it to the host name
		for k, v := range svc.Environment {
			t.Setenv(k, v)
		}
		cfg := parseZooCfg(t, "compose/scale/zoo.cfg for "+name, string(cfgText))
		require.Contains(t, svc.Volumes, name+"-data:"+cfg.DataDir, "a named volume on dataDir")
		require.Len(t, cfg.Servers, 3, "zoo.cfg names the first three; zk-3 and zk-4 join")
		require.True(t, cfg.AutoJoin.Enabled, "%s: autojoin on", name)
		require.True(t, cfg.Dynamic.ReconfigEnabled)
		user, password, _ := strings.Cut(cfg.AutoJoin.Digest, ":")
		sum := sha1.Sum([]byte(user + ":" + password))
		require.Equal(t, user+":"+base64.StdEncoding.EncodeToString(sum[:]), cfg.SuperDigest)
		cfg.ServerID = i + 1
		self, err := cfg.AutoJoinSelf()
		require.NoError(t, err)
		require.Equal(t, name, self.Host)
		require.Equal(t, cfg.ClientPort, self.ClientPort)
	}
}
