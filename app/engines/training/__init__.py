"""What the bundles' trainers plug into MONAI's ``SupervisedTrainer``: handlers (resume, checkpoints, stopping
rules), the learning-rate schedule, and the batch preparation that stacks the weight map behind the label."""
