"""preferences per person (current choice and its history), absences and delegates, calendar feeds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CATEGORY = sa.Enum('deadlines', 'nudges', 'digests', 'notices', 'budget', name='category',
                    native_enum=False, create_constraint=False, length=32)
_FREQUENCY = sa.Enum('immediately', 'daily', 'weekly', 'never', name='frequency',
                     native_enum=False, create_constraint=False, length=32)


def _choice_columns() -> list[sa.Column]:
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('category', _CATEGORY, nullable=False),
        sa.Column('frequency', _FREQUENCY, nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=True),
        sa.Column('hour', sa.Integer(), nullable=False),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table('person_preference',
    *_choice_columns(),
    sa.Column('updated_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('person_id', 'category')
    )
    op.create_index(op.f('ix_person_preference_person_id'), 'person_preference', ['person_id'], unique=False)
    op.create_table('person_preference_change',
    *_choice_columns(),
    sa.Column('at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_person_preference_change_person_id'), 'person_preference_change', ['person_id'], unique=False)


    op.create_table('person_absence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('delegate_id', sa.Integer(), nullable=True),
    sa.Column('hold', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('cancelled_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['delegate_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_person_absence_person_id'), 'person_absence', ['person_id'], unique=False)


    op.create_table('calendar_feed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_calendar_feed_person_id'), 'calendar_feed', ['person_id'], unique=False)
    op.create_table('calendar_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('uid', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['calendar_feed.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('feed_id', 'uid')
    )


def downgrade() -> None:
    op.drop_table('calendar_entry')
    op.drop_index(op.f('ix_calendar_feed_person_id'), table_name='calendar_feed')
    op.drop_table('calendar_feed')
    op.drop_index(op.f('ix_person_absence_person_id'), table_name='person_absence')
    op.drop_table('person_absence')
    op.drop_index(op.f('ix_person_preference_change_person_id'), table_name='person_preference_change')
    op.drop_table('person_preference_change')
    op.drop_index(op.f('ix_person_preference_person_id'), table_name='person_preference')
    op.drop_table('person_preference')
