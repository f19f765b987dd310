"""A training's time left counts what the run still draws (its samples and the finished LoRA's
thumbnail), not only its steps (engine/training/progress.py): once, the page said "about 59 s
left" and the run took 157 s more."""

from __future__ import annotations

from engine.training.progress import Progress, images_left


def test_images_left_counts_the_samples_still_to_come_and_the_thumbnail():
    # 10 steps, samples of 2 prompts after steps 4, 8 and the last (10), then a thumbnail.
    assert [images_left(s, 10, 4, 2) for s in (1, 4, 5, 8, 9, 10)] == [7, 7, 5, 5, 3, 3]
    assert images_left(6, 12, 4, 2) == 5  # 8, 12 (the last step is a multiple: no extra)
    assert images_left(3, 10, 0, 2) == 1  # no samples: the thumbnail only


def test_the_time_left_includes_the_images_at_their_measured_rate():
    left = lambda step: images_left(step, 10, 4, 2)  # noqa: E731
    p = Progress(10, left, image_steps=30)
    assert p.eta(1, now=0.0) is None and p.eta(2, now=1.0) is None
    # 1 s a step and no image drawn yet: an image is priced at 30 sampling steps of a third of
    # a training step each, 10 s; 7 images still to draw.
    assert p.eta(3, now=2.0) == 7 * 1.0 + 7 * 10.0
    p.drew(4.0)  # the samples after step 4 took 4 s each: that is not training time
    p.drew(4.0)
    assert p.eta(4, now=11.0) == 6 * 1.0 + 7 * 4.0
    assert p.eta(5, now=12.0) == 5 * 1.0 + 5 * 4.0
    assert p.eta(10, now=17.0) == 3 * 4.0  # the last samples and the thumbnail
