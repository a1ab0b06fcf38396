"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 10:01:15.441360
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('teachers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('teacher_id', sa.Integer(), nullable=True),
    sa.Column('adaptation_enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['teacher_id'], ['teachers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('students',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handle', sa.String(length=120), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('handle')
    )
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('lesson', sa.String(length=200), nullable=True),
    sa.Column('policy_mode', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_student_id'), ['student_id'], unique=False)

    op.create_table('turns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('student_text', sa.Text(), nullable=False),
    sa.Column('tutor_text', sa.Text(), nullable=False),
    sa.Column('input_source', sa.String(length=20), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'index')
    )
    with op.batch_alter_table('turns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_turns_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_turns_session_id'), ['session_id'], unique=False)

    op.create_table('adaptations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('turn_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('tone', sa.String(length=20), nullable=False),
    sa.Column('pacing', sa.String(length=30), nullable=False),
    sa.Column('hint_level', sa.Integer(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['turn_id'], ['turns.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('adaptations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adaptations_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_adaptations_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adaptations_turn_id'), ['turn_id'], unique=False)

    op.create_table('emotion_readings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('turn_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=20), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('probs', sa.JSON(), nullable=False),
    sa.Column('modality_probs', sa.JSON(), nullable=False),
    sa.Column('transcript', sa.Text(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('model_version', sa.String(length=120), nullable=False),
    sa.Column('degraded', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['turn_id'], ['turns.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('emotion_readings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emotion_readings_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_emotion_readings_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_emotion_readings_turn_id'), ['turn_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('emotion_readings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emotion_readings_turn_id'))
        batch_op.drop_index(batch_op.f('ix_emotion_readings_session_id'))
        batch_op.drop_index(batch_op.f('ix_emotion_readings_created_at'))

    op.drop_table('emotion_readings')
    with op.batch_alter_table('adaptations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adaptations_turn_id'))
        batch_op.drop_index(batch_op.f('ix_adaptations_session_id'))
        batch_op.drop_index(batch_op.f('ix_adaptations_created_at'))

    op.drop_table('adaptations')
    with op.batch_alter_table('turns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_turns_session_id'))
        batch_op.drop_index(batch_op.f('ix_turns_created_at'))

    op.drop_table('turns')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_student_id'))

    op.drop_table('sessions')
    op.drop_table('students')
    op.drop_table('classes')
    op.drop_table('teachers')
