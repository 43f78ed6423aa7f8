#include "runtime/providers/s3/schema.h"

#include "compiler/schema/builders.h"

namespace plinth {
namespace {

using namespace schema;  // NOLINT: the builders read as a declaration language here

ResourceSchema Bucket() {
  ResourceSchema s{"s3_bucket", "s3",
                   "A bucket in an S3 store (AWS S3 or an S3-compatible store such as Ceph RADOS Gateway): "
                   "versioning, lifecycle rules, tags, access grants turned into a bucket policy, and encryption.",
                   {}};
  s.body.attributes = {
      ForceNew(Attr("bucket", Type::String(), AttrMode::OptionalComputed,
                    "The bucket's name in the store. Defaults to the instance's name.")),
      WithDefault(Attr("versioning", Type::Bool(), AttrMode::Optional,
                       "Keep previous versions of objects. Turning it off suspends versioning (S3 cannot "
                       "return a bucket to never-versioned)."),
                  Value::Bool(false)),
      Attr("policy", Type::String(), AttrMode::Optional,
           "A bucket policy (JSON) whose statements are merged with the ones generated from grant blocks and "
           "enforce_encryption."),
      Attr("tags", Type::Map(Type::String()), AttrMode::Optional, "Bucket tags."),
      WithDefault(Enum(Attr("encryption", Type::String(), AttrMode::Optional,
                            "Default encryption of new objects (PutBucketEncryption). Stores without that API "
                            "(Ceph 16) refuse \"AES256\"; use enforce_encryption there."),
                       {"none", "AES256"}),
                  Value::String("none")),
      WithDefault(Attr("enforce_encryption", Type::Bool(), AttrMode::Optional,
                       "Add a bucket-policy statement that denies PutObject requests without an "
                       "x-amz-server-side-encryption header."),
                  Value::Bool(false)),
      WithDefault(Attr("force_destroy", Type::Bool(), AttrMode::Optional,
                       "Deleting the bucket also deletes every object version and delete marker in it. Off: a "
                       "bucket that holds any refuses deletion. Recorded by Plinth, not sent to the store."),
                  Value::Bool(false)),
      Attr("arn", Type::String(), AttrMode::Computed, "arn:aws:s3:::BUCKET"),
      Attr("endpoint", Type::String(), AttrMode::Computed, "The bucket's URL at the store."),
  };
  s.body.blocks = {
      {"lifecycle_rule", true, "rule id", 0, SIZE_MAX,
       Body({WithDefault(Attr("prefix", Type::String(), AttrMode::Optional, "Objects the rule applies to."),
                         Value::String("")),
             Attr("expire_after", Type::Duration(), AttrMode::Optional,
                  "Age after which current objects expire (rounded up to whole days)."),
             Attr("noncurrent_expire_after", Type::Duration(), AttrMode::Optional,
                  "Age after which previous versions are deleted (rounded up to whole days)."),
             Attr("transition_after", Type::Duration(), AttrMode::Optional,
                  "Age after which objects move to transition_storage_class (rounded up to whole days)."),
             Attr("transition_storage_class", Type::String(), AttrMode::Optional,
                  "Storage class for transition_after; it must exist in the store."),
             Attr("abort_incomplete_multipart_after", Type::Duration(), AttrMode::Optional,
                  "Age after which unfinished multipart uploads are aborted (rounded up to whole days).")}),
       "A lifecycle rule: expiry, transition and cleanup by prefix and age."},
      {"grant", true, "principal (a user name of the store)", 0, SIZE_MAX,
       Body({Enum(Attr("access", Type::String(), AttrMode::Required,
                       "read: list and get; write: read plus put and delete; admin: every s3 action."),
                  {"read", "write", "admin"})}),
       "Access for a user of the store, as a bucket-policy statement for arn:aws:iam:::user/PRINCIPAL."},
  };
  return s;
}

class S3Schemas : public SchemaSource {
 public:
  std::string ProviderName() const override { return "s3"; }
  std::vector<ResourceSchema> ResourceSchemas() const override { return {Bucket()}; }
};

}  // namespace

const SchemaSource& S3ProviderSchemas() {
  static const S3Schemas schemas;
  return schemas;
}

}  // namespace plinth
