package deploy

// A faithful local copy of the CloudNativePG `Cluster` API (postgresql.cnpg.io/v1).
//
// WHY a copy: github.com/cloudnative-pg/cloudnative-pg (and github.com/cloudnative-pg/api)
// do not resolve from the Go module proxy available to this repository (403), and the
// operator module would drag controller-runtime and the Prometheus Operator into
// this test module anyway. The field names, JSON tags and Go types below are
// transcribed from api/v1/cluster_types.go of cloudnative-pg (1.27/1.28 line);
// the enum and format checks of its CRD that this repository relies on are in
// validateCNPGCluster.
//
// Every top-level field of ClusterSpec is declared, so any valid top-level key
// decodes and any misspelt one fails. Nested structures this repository sets
// (postgresql, synchronous, bootstrap.initdb, storage, walStorage, affinity,
// monitoring, managed.roles) are typed completely; the nested structures it does
// not use are json.RawMessage: accepted, but not checked field by field.

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type cnpgCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`

	Spec   cnpgClusterSpec `json:"spec"`
	Status json.RawMessage `json:"status,omitempty"`
}

type cnpgClusterSpec struct {
	Description               string                            `json:"description,omitempty"`
	InheritedMetadata         *cnpgEmbeddedObjectMetadata       `json:"inheritedMetadata,omitempty"`
	ImageName                 string                            `json:"imageName,omitempty"`
	ImageCatalogRef           json.RawMessage                   `json:"imageCatalogRef,omitempty"`
	ImagePullPolicy           corev1.PullPolicy                 `json:"imagePullPolicy,omitempty"`
	SchedulerName             string                            `json:"schedulerName,omitempty"`
	PostgresUID               int64                             `json:"postgresUID,omitempty"`
	PostgresGID               int64                             `json:"postgresGID,omitempty"`
	Instances                 int                               `json:"instances"`
	MinSyncReplicas           int                               `json:"minSyncReplicas,omitempty"`
	MaxSyncReplicas           int                               `json:"maxSyncReplicas,omitempty"`
	PostgresConfiguration     cnpgPostgresConfiguration         `json:"postgresql,omitempty"`
	ReplicationSlots          json.RawMessage                   `json:"replicationSlots,omitempty"`
	Bootstrap                 *cnpgBootstrapConfiguration       `json:"bootstrap,omitempty"`
	ReplicaCluster            json.RawMessage                   `json:"replica,omitempty"`
	SuperuserSecret           *cnpgLocalObjectReference         `json:"superuserSecret,omitempty"`
	EnableSuperuserAccess     *bool                             `json:"enableSuperuserAccess,omitempty"`
	Certificates              json.RawMessage                   `json:"certificates,omitempty"`
	ImagePullSecrets          []cnpgLocalObjectReference        `json:"imagePullSecrets,omitempty"`
	StorageConfiguration      cnpgStorageConfiguration          `json:"storage,omitempty"`
	ServiceAccountTemplate    json.RawMessage                   `json:"serviceAccountTemplate,omitempty"`
	WalStorage                *cnpgStorageConfiguration         `json:"walStorage,omitempty"`
	EphemeralVolumeSource     *corev1.EphemeralVolumeSource     `json:"ephemeralVolumeSource,omitempty"`
	MaxStartDelay             int32                             `json:"startDelay,omitempty"`
	MaxStopDelay              int32                             `json:"stopDelay,omitempty"`
	SmartShutdownTimeout      *int32                            `json:"smartShutdownTimeout,omitempty"`
	MaxSwitchoverDelay        int32                             `json:"switchoverDelay,omitempty"`
	FailoverDelay             int32                             `json:"failoverDelay,omitempty"`
	LivenessProbeTimeout      *int32                            `json:"livenessProbeTimeout,omitempty"`
	Affinity                  cnpgAffinityConfiguration         `json:"affinity,omitempty"`
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	Resources                 corev1.ResourceRequirements       `json:"resources,omitempty"`
	EphemeralVolumesSizeLimit json.RawMessage                   `json:"ephemeralVolumesSizeLimit,omitempty"`
	PriorityClassName         string                            `json:"priorityClassName,omitempty"`
	PrimaryUpdateStrategy     string                            `json:"primaryUpdateStrategy,omitempty"`
	PrimaryUpdateMethod       string                            `json:"primaryUpdateMethod,omitempty"`
	Backup                    json.RawMessage                   `json:"backup,omitempty"`
	NodeMaintenanceWindow     json.RawMessage                   `json:"nodeMaintenanceWindow,omitempty"`
	Monitoring                *cnpgMonitoringConfiguration      `json:"monitoring,omitempty"`
	ExternalClusters          json.RawMessage                   `json:"externalClusters,omitempty"`
	LogLevel                  string                            `json:"logLevel,omitempty"`
	ProjectedVolumeTemplate   *corev1.ProjectedVolumeSource     `json:"projectedVolumeTemplate,omitempty"`
	Env                       []corev1.EnvVar                   `json:"env,omitempty"`
	EnvFrom                   []corev1.EnvFromSource            `json:"envFrom,omitempty"`
	Managed                   *cnpgManagedConfiguration         `json:"managed,omitempty"`
	SeccompProfile            *corev1.SeccompProfile            `json:"seccompProfile,omitempty"`
	PodSecurityContext        *corev1.PodSecurityContext        `json:"podSecurityContext,omitempty"`
	SecurityContext           *corev1.SecurityContext           `json:"securityContext,omitempty"`
	Tablespaces               json.RawMessage                   `json:"tablespaces,omitempty"`
	EnablePDB                 *bool                             `json:"enablePDB,omitempty"`
	Plugins                   json.RawMessage                   `json:"plugins,omitempty"`
	Probes                    json.RawMessage                   `json:"probes,omitempty"`
}

type cnpgEmbeddedObjectMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type cnpgLocalObjectReference struct {
	Name string `json:"name"`
}

type cnpgPostgresConfiguration struct {
	Parameters                    map[string]string                    `json:"parameters,omitempty"`
	Synchronous                   *cnpgSynchronousReplicaConfiguration `json:"synchronous,omitempty"`
	PgHBA                         []string                             `json:"pg_hba,omitempty"`
	PgIdent                       []string                             `json:"pg_ident,omitempty"`
	SyncReplicaElectionConstraint json.RawMessage                      `json:"syncReplicaElectionConstraint,omitempty"`
	AdditionalLibraries           []string                             `json:"shared_preload_libraries,omitempty"`
	LDAP                          json.RawMessage                      `json:"ldap,omitempty"`
	PgCtlTimeoutForPromotion      int32                                `json:"promotionTimeout,omitempty"`
	EnableAlterSystem             bool                                 `json:"enableAlterSystem,omitempty"`
	Extensions                    json.RawMessage                      `json:"extensions,omitempty"`
}

type cnpgSynchronousReplicaConfiguration struct {
	Method                     string   `json:"method"`
	Number                     int      `json:"number"`
	MaxStandbyNamesFromCluster *int     `json:"maxStandbyNamesFromCluster,omitempty"`
	StandbyNamesPre            []string `json:"standbyNamesPre,omitempty"`
	StandbyNamesPost           []string `json:"standbyNamesPost,omitempty"`
	DataDurability             string   `json:"dataDurability,omitempty"`
	FailoverQuorum             bool     `json:"failoverQuorum"`
}

type cnpgBootstrapConfiguration struct {
	InitDB       *cnpgBootstrapInitDB `json:"initdb,omitempty"`
	Recovery     json.RawMessage      `json:"recovery,omitempty"`
	PgBaseBackup json.RawMessage      `json:"pg_basebackup,omitempty"`
}

type cnpgBootstrapInitDB struct {
	Database                   string                    `json:"database,omitempty"`
	Owner                      string                    `json:"owner,omitempty"`
	Secret                     *cnpgLocalObjectReference `json:"secret,omitempty"`
	Options                    []string                  `json:"options,omitempty"`
	DataChecksums              *bool                     `json:"dataChecksums,omitempty"`
	Encoding                   string                    `json:"encoding,omitempty"`
	LocaleCollate              string                    `json:"localeCollate,omitempty"`
	LocaleCType                string                    `json:"localeCType,omitempty"`
	Locale                     string                    `json:"locale,omitempty"`
	LocaleProvider             string                    `json:"localeProvider,omitempty"`
	IcuLocale                  string                    `json:"icuLocale,omitempty"`
	IcuRules                   string                    `json:"icuRules,omitempty"`
	BuiltinLocale              string                    `json:"builtinLocale,omitempty"`
	WalSegmentSize             int                       `json:"walSegmentSize,omitempty"`
	PostInitSQL                []string                  `json:"postInitSQL,omitempty"`
	PostInitApplicationSQL     []string                  `json:"postInitApplicationSQL,omitempty"`
	PostInitTemplateSQL        []string                  `json:"postInitTemplateSQL,omitempty"`
	Import                     json.RawMessage           `json:"import,omitempty"`
	PostInitApplicationSQLRefs json.RawMessage           `json:"postInitApplicationSQLRefs,omitempty"`
	PostInitTemplateSQLRefs    json.RawMessage           `json:"postInitTemplateSQLRefs,omitempty"`
	PostInitSQLRefs            json.RawMessage           `json:"postInitSQLRefs,omitempty"`
}

type cnpgStorageConfiguration struct {
	StorageClass                  *string                           `json:"storageClass,omitempty"`
	Size                          string                            `json:"size,omitempty"`
	ResizeInUseVolumes            *bool                             `json:"resizeInUseVolumes,omitempty"`
	PersistentVolumeClaimTemplate *corev1.PersistentVolumeClaimSpec `json:"pvcTemplate,omitempty"`
}

type cnpgAffinityConfiguration struct {
	EnablePodAntiAffinity     *bool                   `json:"enablePodAntiAffinity,omitempty"`
	TopologyKey               string                  `json:"topologyKey,omitempty"`
	NodeSelector              map[string]string       `json:"nodeSelector,omitempty"`
	NodeAffinity              *corev1.NodeAffinity    `json:"nodeAffinity,omitempty"`
	Tolerations               []corev1.Toleration     `json:"tolerations,omitempty"`
	PodAntiAffinityType       string                  `json:"podAntiAffinityType,omitempty"`
	AdditionalPodAntiAffinity *corev1.PodAntiAffinity `json:"additionalPodAntiAffinity,omitempty"`
	AdditionalPodAffinity     *corev1.PodAffinity     `json:"additionalPodAffinity,omitempty"`
}

type cnpgMonitoringConfiguration struct {
	DisableDefaultQueries          *bool            `json:"disableDefaultQueries,omitempty"`
	CustomQueriesConfigMap         json.RawMessage  `json:"customQueriesConfigMap,omitempty"`
	CustomQueriesSecret            json.RawMessage  `json:"customQueriesSecret,omitempty"`
	EnablePodMonitor               bool             `json:"enablePodMonitor,omitempty"`
	TLSConfig                      json.RawMessage  `json:"tls,omitempty"`
	PodMonitorMetricRelabelConfigs json.RawMessage  `json:"podMonitorMetricRelabelings,omitempty"`
	PodMonitorRelabelConfigs       json.RawMessage  `json:"podMonitorRelabelings,omitempty"`
	MetricsQueriesTTL              *metav1.Duration `json:"metricsQueriesTTL,omitempty"`
}

type cnpgManagedConfiguration struct {
	Roles    []cnpgRoleConfiguration `json:"roles,omitempty"`
	Services json.RawMessage         `json:"services,omitempty"`
}

type cnpgRoleConfiguration struct {
	Name            string                    `json:"name"`
	Comment         string                    `json:"comment,omitempty"`
	Ensure          string                    `json:"ensure,omitempty"`
	PasswordSecret  *cnpgLocalObjectReference `json:"passwordSecret,omitempty"`
	ConnectionLimit int64                     `json:"connectionLimit,omitempty"`
	ValidUntil      *metav1.Time              `json:"validUntil,omitempty"`
	InRoles         []string                  `json:"inRoles,omitempty"`
	Inherit         *bool                     `json:"inherit,omitempty"`
	DisablePassword bool                      `json:"disablePassword,omitempty"`
	Superuser       bool                      `json:"superuser,omitempty"`
	CreateDB        bool                      `json:"createdb,omitempty"`
	CreateRole      bool                      `json:"createrole,omitempty"`
	Login           bool                      `json:"login,omitempty"`
	Replication     bool                      `json:"replication,omitempty"`
	BypassRLS       bool                      `json:"bypassrls,omitempty"`
}

// validateCNPGCluster applies the CRD's own constraints (kubebuilder enums,
// minimums, quantity formats) to the fields that a JSON decode cannot check.
func validateCNPGCluster(c *cnpgCluster) []error {
	var errs []error
	oneOf := func(field, v string, allowed ...string) {
		if v == "" {
			return
		}
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		errs = append(errs, fmt.Errorf("%s: %q is not one of %q", field, v, allowed))
	}
	quantity := func(field, v string) {
		if v == "" {
			return
		}
		if _, err := resource.ParseQuantity(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", field, v, err))
		}
	}
	s := &c.Spec
	if s.Instances < 1 {
		errs = append(errs, fmt.Errorf("spec.instances: %d, minimum is 1", s.Instances))
	}
	oneOf("spec.primaryUpdateStrategy", s.PrimaryUpdateStrategy, "unsupervised", "supervised")
	oneOf("spec.primaryUpdateMethod", s.PrimaryUpdateMethod, "switchover", "restart")
	oneOf("spec.logLevel", s.LogLevel, "error", "warning", "info", "debug", "trace")
	oneOf("spec.affinity.podAntiAffinityType", s.Affinity.PodAntiAffinityType, "preferred", "required")
	if sy := s.PostgresConfiguration.Synchronous; sy != nil {
		oneOf("spec.postgresql.synchronous.method", sy.Method, "any", "first")
		if sy.Method == "" {
			errs = append(errs, fmt.Errorf("spec.postgresql.synchronous.method is required"))
		}
		if sy.Number <= 0 {
			errs = append(errs, fmt.Errorf("spec.postgresql.synchronous.number: %d, must be > 0", sy.Number))
		}
		if sy.Number >= s.Instances {
			errs = append(errs, fmt.Errorf("spec.postgresql.synchronous.number: %d, must be below instances (%d)", sy.Number, s.Instances))
		}
		oneOf("spec.postgresql.synchronous.dataDurability", sy.DataDurability, "required", "preferred")
	}
	quantity("spec.storage.size", s.StorageConfiguration.Size)
	if s.WalStorage != nil {
		quantity("spec.walStorage.size", s.WalStorage.Size)
	}
	if s.Bootstrap != nil && s.Bootstrap.InitDB != nil {
		if w := s.Bootstrap.InitDB.WalSegmentSize; w != 0 && (w < 1 || w > 1024) {
			errs = append(errs, fmt.Errorf("spec.bootstrap.initdb.walSegmentSize: %d, must be in 1..1024", w))
		}
	}
	if m := s.Managed; m != nil {
		for i, r := range m.Roles {
			if r.Name == "" {
				errs = append(errs, fmt.Errorf("spec.managed.roles[%d].name is required", i))
			}
			oneOf(fmt.Sprintf("spec.managed.roles[%d].ensure", i), r.Ensure, "present", "absent")
		}
	}
	return errs
}
