#include "runtime/providers/local/schema.h"

#include "compiler/schema/builders.h"

namespace plinth {
namespace {

using namespace schema;  // NOLINT: the builders read as a declaration language here

ResourceSchema Region() {
  ResourceSchema s{"region", "local",
                   "A region of the local provider: an isolated data root directory and a port range for the "
                   "services placed in it.",
                   {}};
  s.body.attributes = {
      ForceNew(Attr("root", Type::String(), AttrMode::OptionalComputed,
                    "Data root of the region, relative to the workspace's data directory. Defaults to "
                    "regions/<name>.")),
      WithDefault(Attr("port_base", Type::Int(), AttrMode::Optional, "First port of the region's port range."),
                  Value::Number(20000)),
      WithDefault(Attr("port_count", Type::Int(), AttrMode::Optional, "Number of ports in the region's range."),
                  Value::Number(1000)),
      WithDefault(Attr("down", Type::Bool(), AttrMode::Optional,
                       "Marks the region as failed: nothing is placed in it (for failover drills)."),
                  Value::Bool(false)),
      Attr("labels", Type::Map(Type::String()), AttrMode::Optional, "Free-form labels."),
      Attr("path", Type::String(), AttrMode::Computed, "Absolute path of the region's data root."),
  };
  return s;
}

ResourceSchema Bucket() {
  ResourceSchema s{"bucket", "local",
                   "Object storage for datasets, checkpoints and results: a directory in its region, with capacity "
                   "alerts, versioning, lifecycle rules, backups to another region and access grants.",
                   {}};
  s.body.attributes = {
      ForceNew(Ref("region", "region", AttrMode::Required, "Region that holds the bucket.")),
      Attr("capacity", Type::Size(), AttrMode::Optional,
           "Size quota; usage is measured against it and alerts fire at alert_at."),
      WithDefault(Attr("alert_at", Type::Percent(), AttrMode::Optional, "Usage that raises a capacity alert."),
                  Value::Percent(80)),
      Caveat(WithDefault(Enum(Attr("encryption", Type::String(), AttrMode::Optional,
                                   "Encryption at rest. On the local provider stored versions, the archive tier "
                                   "and backups are always encrypted; live objects are plain files."),
                              {"none", "aes-256-gcm"}),
                         Value::String("none")),
             "live objects of a local bucket are plain files readable by path; stored versions, the archive tier "
             "and backups are encrypted (AES-256-GCM) whatever this says"),
      WithDefault(Attr("versioning", Type::Bool(), AttrMode::Optional,
                       "Keep previous versions of objects written through Plinth."),
                  Value::Bool(false)),
      Attr("labels", Type::Map(Type::String()), AttrMode::Optional, "Free-form labels."),
      WithDefault(Attr("force_destroy", Type::Bool(), AttrMode::Optional,
                       "Deleting the bucket also deletes its objects, stored versions, archived objects and "
                       "backups. Off: a bucket that holds data refuses deletion."),
                  Value::Bool(false)),
      Attr("path", Type::String(), AttrMode::Computed, "Absolute path of the bucket's directory."),
      Sensitive(Attr("key", Type::String(), AttrMode::Computed,
                     "The bucket's data key, wrapped by the workspace key (never shown).")),
  };
  s.body.blocks = {
      {"lifecycle_rule", true, "rule name", 0, SIZE_MAX,
       Body({WithDefault(Attr("prefix", Type::String(), AttrMode::Optional, "Objects the rule applies to."),
                         Value::String("")),
             Attr("archive_after", Type::Duration(), AttrMode::Optional, "Age after which objects are archived."),
             Attr("expire_after", Type::Duration(), AttrMode::Optional, "Age after which objects are deleted."),
             Attr("noncurrent_expire_after", Type::Duration(), AttrMode::Optional,
                  "Age after which previous versions are deleted.")}),
       "Archives or expires objects by prefix and age."},
      {"backup", false, "", 0, 1,
       Body({Attr("every", Type::Duration(), AttrMode::Required, "Interval between backups."),
             Ref("to", "region", AttrMode::Required, "Region that holds the backup repository."),
             Attr("keep", Type::Map(Type::Int()), AttrMode::Optional,
                  "Retention: counts per period (hourly, daily, weekly, monthly, yearly, last).")}),
       "Scheduled, encrypted backups to another region."},
      {"grant", true, "principal", 0, SIZE_MAX,
       Body({Enum(Attr("access", Type::String(), AttrMode::Required, "Access level of the principal."),
                  {"read", "write", "admin"})}),
       "Access for a principal (a job, a service or a user name)."},
  };
  return s;
}

ResourceSchema Marker() {
  ResourceSchema s{"marker", "local",
                   "A file whose existence proves the resource exists: created on create, removed on delete. Used by "
                   "tests and benchmarks to compare the world with the state.",
                   {}};
  s.body.attributes = {
      ForceNew(Attr("path", Type::String(), AttrMode::Required, "File path, relative to the data root.")),
      WithDefault(Attr("content", Type::String(), AttrMode::Optional, "Text written into the file."),
                  Value::String("")),
      ForceNew(Attr("triggers", Type::Map(Type::String()), AttrMode::Optional,
                    "Any change to these values replaces the marker.")),
  };
  return s;
}

class LocalSchemas : public SchemaSource {
 public:
  std::string ProviderName() const override { return "local"; }
  std::vector<ResourceSchema> ResourceSchemas() const override { return {Region(), Bucket(), Marker()}; }
};

}  // namespace

const SchemaSource& LocalProviderSchemas() {
  static const LocalSchemas schemas;
  return schemas;
}

}  // namespace plinth
