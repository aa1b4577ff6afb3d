package s3

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/johannesboyne/gofakes3"
)

// migrateKeys moves objects stored before keys were escaped (the key used as a plain path under
// the bucket) to their escaped names, with their metadata, once. Reading both layouts forever
// would keep the old layout's ambiguity ("a" vs "a/b", ".." segments) alive.
func migrateKeys(b gofakes3.Backend, log *slog.Logger) error {
	buckets, err := b.ListBuckets()
	if err != nil {
		return err
	}
	for _, bk := range buckets {
		list, err := b.ListBucket(bk.Name, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
		if err != nil {
			return fmt.Errorf("bucket %s: %w", bk.Name, err)
		}
		for _, c := range list.Contents {
			if key, ok := keyOf(c.Key); ok && diskPath(key) == c.Key {
				continue
			}
			if to := diskPath(c.Key); len(to) > maxDiskPath {
				// Left where it is (and not served) rather than refusing to start.
				log.Warn("S3 object key too long for the escaped-key layout; upload it again under a shorter key",
					"bucket", bk.Name, "key", c.Key, "path", filepath.Join("buckets", bk.Name, filepath.FromSlash(c.Key)))
				continue
			}
			if err := moveObject(b, bk.Name, c.Key, diskPath(c.Key)); err != nil {
				return fmt.Errorf("object s3://%s/%s: %w", bk.Name, c.Key, err)
			}
			log.Info("S3 object moved to the escaped-key layout", "bucket", bk.Name, "key", c.Key)
		}
	}
	return nil
}

func moveObject(b gofakes3.Backend, bucket, from, to string) error {
	obj, err := b.GetObject(bucket, from, nil)
	if err != nil {
		return err
	}
	meta := obj.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	meta[multipartETagMeta] = ""
	_, err = b.PutObject(bucket, to, meta, obj.Contents, obj.Size, nil)
	obj.Contents.Close()
	if err != nil {
		return err
	}
	_, err = b.DeleteObject(bucket, from)
	return err
}
